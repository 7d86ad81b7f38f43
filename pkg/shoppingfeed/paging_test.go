package shoppingfeed

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestBatchTicketsWithoutPageCount reads on while pages are full when the
// answer does not say how many pages there are, and drops a ticket listed
// twice (a page boundary that moved between two reads).
func TestBatchTicketsWithoutPageCount(t *testing.T) {
	var pagesAsked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		pagesAsked = append(pagesAsked, r.URL.Query().Get("page"))
		ids := map[int][]string{1: {"a", "b"}, 2: {"b", "c"}, 3: {"d"}}[page]
		var items []string
		for _, id := range ids {
			items = append(items, fmt.Sprintf(`{"id":%q,"state":"succeed"}`, id))
		}
		fmt.Fprintf(w, `{"_embedded":{"ticket":[%s]},"meta":{"processing":false}}`, strings.Join(items, ","))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, RateLimit: "none"}, nil, nil, WithTicketPageSize(2))
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.BatchTickets(t.Context(), "tok", "1", "b1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range list.Tickets {
		got = append(got, tk.ID)
	}
	if strings.Join(got, ",") != "a,b,c,d" || strings.Join(pagesAsked, ",") != "1,2,3" || list.Processing {
		t.Errorf("tickets %v from pages %v, processing %v", got, pagesAsked, list.Processing)
	}
}
