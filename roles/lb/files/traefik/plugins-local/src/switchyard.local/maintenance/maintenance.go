// Copyright: Switchyard developers
// GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
// SPDX-License-Identifier: GPL-3.0-or-later

// Package maintenance is a Traefik middleware (a local plugin, run by Traefik's Yaegi interpreter) that answers
// every request with a fixed page: Traefik has no static response of its own. Switchyard's route files put it in
// front of a route's routers while the route is in maintenance (a recreate's outage).
package maintenance

import (
	"context"
	"net/http"
	"strconv"
)

// Config is the middleware's dynamic configuration (written by switchyard.release's Traefik backend).
type Config struct {
	Status     int    `json:"status,omitempty"`
	RetryAfter int    `json:"retryAfter,omitempty"`
	Header     string `json:"header,omitempty"`
	Body       string `json:"body,omitempty"`
}

// CreateConfig returns the defaults: 503, Retry-After 30 s.
func CreateConfig() *Config {
	return &Config{Status: http.StatusServiceUnavailable, RetryAfter: 30, Header: "X-Switchyard-Maintenance"}
}

// Maintenance answers the page; next is never called.
type Maintenance struct {
	next http.Handler
	cfg  *Config
}

// New builds the middleware.
func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return &Maintenance{next: next, cfg: cfg}, nil
}

func (m *Maintenance) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	header := rw.Header()
	header.Set("Content-Type", "text/html; charset=utf-8")
	header.Set("Retry-After", strconv.Itoa(m.cfg.RetryAfter))
	header.Set("Cache-Control", "no-store")
	if m.cfg.Header != "" {
		header.Set(m.cfg.Header, "on")
	}
	rw.WriteHeader(m.cfg.Status)
	_, _ = rw.Write([]byte(m.cfg.Body))
}
