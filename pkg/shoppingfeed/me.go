package shoppingfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sfsync/sfsync/pkg/config"
)

// StoreStatus is a store's status on Shopping Feed.
type StoreStatus string

// Store statuses.
const (
	StoreActive    StoreStatus = "active"
	StoreDemo      StoreStatus = "demo"
	StoreDeleted   StoreStatus = "deleted"
	StoreSuspended StoreStatus = "suspended"
)

// Store is one store a token may act on.
type Store struct {
	ID      string
	Name    string
	Status  StoreStatus
	Country string
}

// Me is the account behind a token.
type Me struct {
	ID     string
	Login  string
	Stores []Store
}

// Store returns the account's store with the given id.
func (m Me) Store(id string) (Store, bool) {
	for _, s := range m.Stores {
		if s.ID == id {
			return s, true
		}
	}
	return Store{}, false
}

// Me reads the token's account and its stores (GET /v1/me). It is the way
// to check a token: a rejected one is an error matching ErrTokenRejected.
func (c *Client) Me(ctx context.Context, token config.Secret) (Me, error) {
	res, err := c.do(ctx, call{op: "me", method: http.MethodGet, path: "/v1/me", token: token})
	if err != nil {
		return Me{}, err
	}
	me, err := decodeMe(res.body)
	if err != nil {
		return Me{}, fmt.Errorf("shoppingfeed me: %w", err)
	}
	return me, nil
}

// Ping checks that the API answers (GET /v1/ping, no token).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.do(ctx, call{op: "ping", method: http.MethodGet, path: "/v1/ping", anonymous: true})
	return err
}

// Authenticate trades an account's name and password for an API token
// (POST /v1/auth). Wrong credentials are an error matching ErrTokenRejected.
func (c *Client) Authenticate(ctx context.Context, username string, password config.Secret) (config.Secret, error) {
	if username == "" || password == "" {
		return "", invalidf("auth: empty username or password")
	}
	body, err := json.Marshal(map[string]string{
		"grant_type": "password",
		"username":   username,
		"password":   password.Reveal(),
	})
	if err != nil {
		return "", invalidf("auth: %v", err)
	}
	res, err := c.do(ctx, call{op: "auth", method: http.MethodPost, path: "/v1/auth", body: body, anonymous: true, secret: password})
	if err != nil {
		return "", err
	}
	tok, err := decodeToken(res.body)
	if err != nil {
		return "", fmt.Errorf("shoppingfeed auth: %w", err)
	}
	return config.Secret(tok), nil
}
