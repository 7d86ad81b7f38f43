// Command mailsink is the mail catcher of `make compose-test` (package
// mailsink): SMTP on :1025, the messages as JSON on
// http://:8025/api/messages. `mailsink readyz` exits 0 when the running
// sink answers on 127.0.0.1:8025, as mailpit's `readyz` does, so that the
// compose health check of mailpit works unchanged.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/sfsync/sfsync/pkg/internal/mailsink"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "readyz" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:8025/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailsink readyz:", err)
			os.Exit(1)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "mailsink readyz:", resp.Status)
			os.Exit(1)
		}
		return
	}
	sink := &mailsink.Sink{Max: 5000}
	fmt.Println("mailsink: smtp on :1025, http://:8025/api/messages")
	if err := sink.ListenAndServe(":1025", ":8025"); err != nil {
		fmt.Fprintln(os.Stderr, "mailsink:", err)
		os.Exit(1)
	}
}
