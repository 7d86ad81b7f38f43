package sfsandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// entry is one order entry of an operation, validated.
type entry struct {
	raw            json.RawMessage
	id             int64
	reference      string
	channelName    string
	trackingNumber string
}

type kind int

const (
	kString     kind = iota // a string, or null
	kItems                  // [{id, quantity}], or null
	kReturnInfo             // {carrier, trackingNumber}, or null
	kRefund                 // {shipping, products: [{reference, quantity}]}
	kAckStatus              // "success" or "error"
	kDate                   // an ISO-8601 date-time string
)

// operationFields are the fields each operation takes besides the order
// identifier (id, or reference and channelName), from the reference.
// upload-documents (multipart) is not simulated.
var operationFields = map[string]map[string]kind{
	"ship": {
		"carrier": kString, "trackingNumber": kString, "trackingLink": kString,
		"items": kItems, "warehouseId": kString, "returnInfo": kReturnInfo,
	},
	"cancel":        {"reason": kString},
	"refund":        {"refund": kRefund},
	"deliver":       {},
	"accept":        {"reason": kString},
	"refuse":        {},
	"acknowledge":   {"status": kAckStatus, "storeReference": kString, "acknowledgedAt": kDate, "message": kString},
	"unacknowledge": {},
}

var requiredFields = map[string][]string{
	"acknowledge": {"status", "storeReference"},
}

// parseOperation validates an operation's body, {"order":[…]}, and returns
// its entries; its error is the detail of a 400.
func parseOperation(op string, body []byte, maxOrders int) ([]entry, error) {
	fields := operationFields[op]
	dec := json.NewDecoder(bytes.NewReader(body))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("malformed JSON body: data after the JSON object")
	}
	if top == nil {
		return nil, errors.New(`the body must be a JSON object {"order": [...]}`)
	}
	for _, k := range sortedKeys(top) {
		if k != "order" {
			return nil, fmt.Errorf("unknown field %q: the body holds only \"order\"", k)
		}
	}
	raw, ok := top["order"]
	if !ok {
		return nil, errors.New(`missing field "order"`)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New(`field "order" must be a list of orders`)
	}
	if len(list) == 0 {
		return nil, errors.New(`field "order" is empty`)
	}
	if len(list) > maxOrders {
		return nil, fmt.Errorf("%d orders in one request; at most %d are allowed", len(list), maxOrders)
	}
	entries := make([]entry, len(list))
	for i, raw := range list {
		e, err := parseEntry(op, fields, raw)
		if err != nil {
			return nil, fmt.Errorf("order[%d]: %v", i, err)
		}
		entries[i] = e
	}
	return entries, nil
}

func parseEntry(op string, fields map[string]kind, raw json.RawMessage) (entry, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return entry{}, errors.New("must be an object")
	}
	e := entry{raw: slices.Clone(raw)}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "id":
			id, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil || id <= 0 {
				return entry{}, fmt.Errorf("id must be a positive integer, got %.40s", v)
			}
			e.id = id
		case "reference", "channelName":
			s, err := optString(v)
			if err != nil {
				return entry{}, fmt.Errorf("%s: %v", k, err)
			}
			if k == "reference" {
				e.reference = s
			} else {
				e.channelName = s
			}
		default:
			kd, ok := fields[k]
			if !ok {
				return entry{}, fmt.Errorf("field %q is not accepted by %s", k, op)
			}
			if err := checkKind(kd, v); err != nil {
				return entry{}, fmt.Errorf("%s: %v", k, err)
			}
			if k == "trackingNumber" {
				e.trackingNumber, _ = optString(v)
			}
		}
	}
	if e.id == 0 && (e.reference == "" || e.channelName == "") {
		return entry{}, errors.New("missing order identifier: give id, or reference and channelName")
	}
	for _, k := range requiredFields[op] {
		if _, ok := m[k]; !ok {
			return entry{}, fmt.Errorf("missing field %q", k)
		}
	}
	return e, nil
}

func optString(v json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("must be a string, got %.40s", v)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

func checkKind(k kind, v json.RawMessage) error {
	isNull := bytes.Equal(bytes.TrimSpace(v), []byte("null"))
	switch k {
	case kString:
		_, err := optString(v)
		return err
	case kItems:
		if isNull {
			return nil
		}
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return errors.New("must be a list of {id, quantity}")
		}
		for i, it := range items {
			if err := checkObject(it, map[string]func(json.RawMessage) error{"id": positiveInt, "quantity": positiveInt}); err != nil {
				return fmt.Errorf("[%d]: %v", i, err)
			}
		}
	case kReturnInfo:
		if isNull {
			return nil
		}
		var ri map[string]json.RawMessage
		if err := json.Unmarshal(v, &ri); err != nil || ri == nil {
			return errors.New("must be an object {carrier, trackingNumber}")
		}
		return checkObject(ri, map[string]func(json.RawMessage) error{"carrier": stringField, "trackingNumber": stringField})
	case kRefund:
		var rf map[string]json.RawMessage
		if err := json.Unmarshal(v, &rf); err != nil || rf == nil {
			return errors.New("must be an object {shipping, products}")
		}
		return checkObject(rf, map[string]func(json.RawMessage) error{
			"shipping": func(v json.RawMessage) error {
				var b bool
				if json.Unmarshal(v, &b) != nil {
					return errors.New("must be a boolean")
				}
				return nil
			},
			"products": func(v json.RawMessage) error {
				var ps []map[string]json.RawMessage
				if err := json.Unmarshal(v, &ps); err != nil {
					return errors.New("must be a list of {reference, quantity}")
				}
				for i, p := range ps {
					if err := checkObject(p, map[string]func(json.RawMessage) error{"reference": stringField, "quantity": positiveInt}); err != nil {
						return fmt.Errorf("[%d]: %v", i, err)
					}
				}
				return nil
			},
		})
	case kAckStatus:
		var s string
		if json.Unmarshal(v, &s) != nil || (s != "success" && s != "error") {
			return fmt.Errorf("must be \"success\" or \"error\", got %.40s", v)
		}
	case kDate:
		var s string
		if json.Unmarshal(v, &s) != nil {
			return errors.New("must be an ISO-8601 date-time string")
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			if _, err := time.Parse("2006-01-02T15:04:05Z0700", s); err != nil {
				return fmt.Errorf("%q is not an ISO-8601 date-time", s)
			}
		}
	}
	return nil
}

// checkObject checks an object's fields, each optional, none unknown.
func checkObject(m map[string]json.RawMessage, fields map[string]func(json.RawMessage) error) error {
	if m == nil {
		return errors.New("must be an object")
	}
	for _, k := range sortedKeys(m) {
		check, ok := fields[k]
		if !ok {
			return fmt.Errorf("unknown field %q", k)
		}
		if err := check(m[k]); err != nil {
			return fmt.Errorf("%s: %v", k, err)
		}
	}
	return nil
}

func positiveInt(v json.RawMessage) error {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("must be a positive integer, got %.40s", v)
	}
	return nil
}

func stringField(v json.RawMessage) error {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return fmt.Errorf("must be a string, got %.40s", v)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
