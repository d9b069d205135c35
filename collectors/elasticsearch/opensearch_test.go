package elasticsearch

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/slogate/slogate/slo"
)

// TestOpenSearch: the opensearch flavor measures an OpenSearch cluster
// (no X-Elastic-Product header) after checking its root document once, and
// refuses a server that is not OpenSearch.
func TestOpenSearch(t *testing.T) {
	tests := map[string]struct {
		product   string
		flavor    string
		asks      int
		want      error
		alsoWant  error
		wantText  string
		wantPaths []string
	}{
		"an OpenSearch cluster is measured after one root check": {
			product: "opensearch", flavor: FlavorOpenSearch, asks: 2,
			wantPaths: []string{"/", "/logs-checkout-*/_search", "/logs-checkout-*/_search"},
		},
		"an OpenSearch cluster is refused by the elasticsearch flavor, like the v8 client does": {
			product: "opensearch", flavor: FlavorElasticsearch, asks: 1,
			want: slo.ErrUnavailable, alsoWant: ErrUnknownProduct, wantText: "X-Elastic-Product",
			wantPaths: []string{"/logs-checkout-*/_search"},
		},
		"an Elasticsearch cluster is refused by the opensearch flavor, and the check is retried": {
			product: "elasticsearch", flavor: FlavorOpenSearch, asks: 2,
			want: slo.ErrUnavailable, alsoWant: ErrNotOpenSearch, wantText: `distribution none, version "8.15.0"`,
			wantPaths: []string{"/", "/"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, srv := newFakeES(t, fakeIndices())
			fake.product = tc.product
			c := newTestClient(t, srv.URL, func(c *Config) { c.Flavor = tc.flavor })
			var err error
			var got slo.Counts
			for range tc.asks {
				got, err = c.Counts(context.Background(), goodSLI(), hour, nil)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got.Good != 9937 || got.Total != 10000 {
					t.Fatalf("counts %+v, want 9937 of 10000", got)
				}
			} else if !errors.Is(err, tc.want) || !errors.Is(err, tc.alsoWant) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("error %v, want %v and %v with %q", err, tc.want, tc.alsoWant, tc.wantText)
			}
			var paths []string
			for _, r := range fake.recorded() {
				paths = append(paths, r.Path)
				if r.Path == "/" && r.Method != http.MethodGet {
					t.Errorf("root check with %s", r.Method)
				}
			}
			if strings.Join(paths, " ") != strings.Join(tc.wantPaths, " ") {
				t.Fatalf("requests %v, want %v", paths, tc.wantPaths)
			}
		})
	}
	t.Run("an unknown flavor is refused by New", func(t *testing.T) {
		if _, err := New(Config{Addresses: []string{"http://127.0.0.1:9200"}, Flavor: "solr"}, nil); err == nil || !strings.Contains(err.Error(), "flavor") {
			t.Fatalf("New: %v", err)
		}
	})
}
