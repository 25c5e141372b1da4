package imap

import (
	"fmt"
	"net/mail"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/outcome"
)

// verdict is what a message's header says: whose it is, who sent it, and
// whether it may be taken at all.
type verdict struct {
	brand string // the routed brand; "" when no route took it
	from  string // the sender's address, lower-case; "" when From names none
	// refusal, when set, is why the message is not applied: it is quarantined
	// whole (in brand's ledger when there is one).
	refusal *ingest.Refusal
}

// judge routes a message by its recipients, checks its sender against the
// route's allowlist, and (with require_dmarc) the receiving server's DMARC
// verdict. Attachments are not looked at here.
func judge(cfg *config.Source, h textproto.Header) verdict {
	var v verdict
	from, fromErr := sender(h)
	v.from = from
	brand, routes, reason := route(cfg.Routes, h)
	if brand == "" {
		v.refusal = &ingest.Refusal{Code: outcome.NoRoute, Reason: reason}
		return v
	}
	v.brand = brand
	if fromErr != "" {
		v.refusal = &ingest.Refusal{Code: outcome.SenderNotAllowed, Reason: fromErr}
		return v
	}
	if !allowed(routes, from) {
		v.refusal = &ingest.Refusal{Code: outcome.SenderNotAllowed, Reason: fmt.Sprintf(
			"the sender %s is not allowed for brand %s (routes[].senders)", from, brand)}
		return v
	}
	if cfg.RequireDMARC {
		if ok, why := dmarcPass(h, cfg.AuthservID, domain(from)); !ok {
			v.refusal = &ingest.Refusal{Code: outcome.SenderNotAuthenticated, Reason: why}
		}
	}
	return v
}

var addressParser = &mail.AddressParser{WordDecoder: wordDecoder}

// sender is the From address, lower-case, or a reason why there is none.
func sender(h textproto.Header) (string, string) {
	v := h.Get("From")
	if strings.TrimSpace(v) == "" {
		return "", "the message has no From address"
	}
	addrs, err := addressParser.ParseList(v)
	if err != nil || len(addrs) != 1 {
		return "", fmt.Sprintf("the From header %q does not name exactly one address", v)
	}
	return strings.ToLower(addrs[0].Address), ""
}

// recipientHeaders are where a message's recipients are read from, in order of
// trust: the envelope recipient as the receiving server recorded it, then the
// addresses the sender wrote.
var recipientHeaders = [][]string{{"Delivered-To", "X-Original-To"}, {"To", "Cc"}}

// route finds the brand a message is for: the routes matching the envelope
// recipient headers, else those matching To and Cc (case-insensitively). A
// message whose recipients name the addresses of more than one brand is not
// routed: which brand's it is cannot be told.
func route(routes []config.Route, h textproto.Header) (string, []config.Route, string) {
	var seen []string
	for _, keys := range recipientHeaders {
		var matched []config.Route
		brands := map[string]bool{}
		for _, key := range keys {
			for _, v := range h.Values(key) {
				for _, addr := range addresses(v) {
					seen = append(seen, addr)
					for _, r := range routes {
						if strings.EqualFold(strings.TrimSpace(r.Recipient), addr) {
							matched = append(matched, r)
							brands[r.Brand] = true
						}
					}
				}
			}
		}
		switch len(brands) {
		case 0:
			continue
		case 1:
			return matched[0].Brand, matched, ""
		default:
			names := make([]string, 0, len(brands))
			for b := range brands {
				names = append(names, b)
			}
			slices.Sort(names)
			return "", nil, fmt.Sprintf("the message is addressed to more than one brand (%s in %s); send each brand's files separately",
				strings.Join(names, ", "), strings.Join(keys, "/"))
		}
	}
	slices.Sort(seen)
	seen = slices.Compact(seen)
	if len(seen) == 0 {
		return "", nil, "the message names no recipient (To, Cc, Delivered-To, X-Original-To)"
	}
	return "", nil, fmt.Sprintf("no route for its recipients (%s)", strings.Join(seen, ", "))
}

// addrSpec finds what looks like an address in a header that does not parse.
var addrSpec = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9.-]+`)

// addresses are the addresses in an address-list header, lower-case.
func addresses(v string) []string {
	var out []string
	if list, err := addressParser.ParseList(v); err == nil {
		for _, a := range list {
			out = append(out, strings.ToLower(a.Address))
		}
		return out
	}
	for _, a := range addrSpec.FindAllString(v, -1) {
		out = append(out, strings.ToLower(a))
	}
	return out
}

// allowed says whether from matches a sender pattern of one of the routes.
func allowed(routes []config.Route, from string) bool {
	for _, r := range routes {
		for _, pat := range r.Senders {
			if ok, _ := path.Match(strings.ToLower(pat), from); ok {
				return true
			}
		}
	}
	return false
}

func domain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// dmarcPass says whether the receiving server (authservID) found that the
// message passes DMARC for the From domain. Only the topmost
// Authentication-Results header of that server counts: the receiving server
// adds its header above those the message came with (RFC 8601 §5), and
// headers of any other authserv-id are whatever the sender wrote.
func dmarcPass(h textproto.Header, authservID, fromDomain string) (bool, string) {
	for _, v := range h.Values("Authentication-Results") {
		id, results := parseAuthResults(v)
		if !strings.EqualFold(id, authservID) {
			continue
		}
		for _, r := range results {
			if r.method != "dmarc" {
				continue
			}
			if r.result != "pass" {
				return false, fmt.Sprintf("DMARC did not pass: %s says dmarc=%s", authservID, r.result)
			}
			if hf := r.props["header.from"]; hf != "" && !strings.EqualFold(hf, fromDomain) {
				return false, fmt.Sprintf("DMARC passed for %s, not for the From domain %s", hf, fromDomain)
			}
			return true, ""
		}
		return false, fmt.Sprintf("the Authentication-Results of %s has no DMARC result", authservID)
	}
	return false, fmt.Sprintf("no Authentication-Results header of %s (authserv_id): the message's DMARC result is unknown", authservID)
}

// authResult is one result of an Authentication-Results header (RFC 8601):
// method=result with its properties (ptype.property=value).
type authResult struct {
	method string
	result string
	props  map[string]string
}

// parseAuthResults parses an Authentication-Results value into its
// authserv-id and results. Comments are dropped; what cannot be read is skipped.
func parseAuthResults(v string) (string, []authResult) {
	parts := splitUnquoted(stripComments(v), ';')
	if len(parts) == 0 {
		return "", nil
	}
	id := ""
	if f := strings.Fields(parts[0]); len(f) > 0 {
		id = f[0] // an optional version may follow
	}
	var out []authResult
	for _, p := range parts[1:] {
		fields := strings.Fields(p)
		if len(fields) == 0 {
			continue
		}
		method, result, ok := strings.Cut(fields[0], "=")
		if !ok {
			continue // "none"
		}
		method, _, _ = strings.Cut(method, "/") // a method version
		r := authResult{method: strings.ToLower(method), result: strings.ToLower(result), props: map[string]string{}}
		for _, f := range fields[1:] {
			if k, val, ok := strings.Cut(f, "="); ok {
				r.props[strings.ToLower(k)] = strings.Trim(val, `"`)
			}
		}
		out = append(out, r)
	}
	return id, out
}

// stripComments removes (comments), which may nest, outside quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (quoted || depth > 0):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
		case quoted:
			b.WriteByte(c)
			if c == '"' {
				quoted = false
			}
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitUnquoted splits s at sep outside quoted strings.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
