package limit

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCheckOrg compares a key's plain limit path with the same
// request under an org (its rate limit and quota added), on one Redis:
// keys spread over 1000 identities in 10 orgs. "key" is a key rule, an
// API rule and a key quota; "org" adds the org's rule and quota (one
// script call still decides it: single Redis).
func BenchmarkCheckOrg(b *testing.B) {
	for _, withOrg := range []bool{false, true} {
		name := "key"
		if withOrg {
			name = "org"
		}
		b.Run(name, func(b *testing.B) {
			var id atomic.Int64
			benchCheck(b, func() *Request {
				n := id.Add(1)
				key := "k:" + strconv.FormatInt(n%1000, 10)
				req := &Request{APIID: "bench", FailOpen: true,
					Rules:  []Rule{rule(key, 1_000_000_000, time.Hour, 0), rule("api", 1_000_000_000, time.Hour, 0)},
					Quotas: []QuotaRule{quota(key+":q", 1_000_000_000, time.Hour)},
				}
				if withOrg {
					org := "org" + strconv.FormatInt(n%10, 10)
					r := rule("o:"+org, 1_000_000_000, time.Hour, 0)
					r.OrgScope = org
					q := quota("q:o:"+org, 1_000_000_000, time.Hour)
					q.OrgScope = org
					req.Rules = append(req.Rules, r)
					req.Quotas = append(req.Quotas, q)
				}
				return req
			})
		})
	}
}
