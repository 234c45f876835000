package traffic

import (
	"slices"
	"testing"
)

// nonce is what istiod sends: push version "<time>/<n>" then a uuid.
func nonce(n string) string {
	return "2026-12-03T14:05:01Z/" + n + "0f8e4c3a-6b1d-4e2f-9a7b-1c2d3e4f5a6b"
}

func TestPushNumber(t *testing.T) {
	for _, tc := range []struct {
		nonce string
		want  uint64
		ok    bool
	}{
		{nonce("17"), 17, true},
		// The uuid may start with a digit: the counter ends 36 characters
		// before the end, not at the first non-digit.
		{"2026-12-03T14:05:01Z/3" + "1f8e4c3a-6b1d-4e2f-9a7b-1c2d3e4f5a6b", 3, true},
		{"", 0, false},
		{"short", 0, false},
		{"no-slash-here" + "0f8e4c3a-6b1d-4e2f-9a7b-1c2d3e4f5a6b", 0, false},
	} {
		got, ok := PushNumber(tc.nonce)
		if got != tc.want || ok != tc.ok {
			t.Errorf("PushNumber(%q) = %d, %v; want %d, %v", tc.nonce, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSyncz(t *testing.T) {
	body := `[{"cluster_id":"Kubernetes","proxy":"client-1.app","istio_version":"1.24.2",
	  "cluster_sent":"` + nonce("5") + `","cluster_acked":"` + nonce("5") + `",
	  "route_sent":"` + nonce("6") + `","route_acked":"` + nonce("5") + `"},
	 {"proxy":"server-1.app","listener_sent":"` + nonce("4") + `","listener_acked":"` + nonce("4") + `"}]`
	rows, err := ParseSyncz([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Proxy != "client-1.app" || rows[0].Sent[Routes] != nonce("6") || rows[0].Acked[Routes] != nonce("5") ||
		rows[1].Sent[Clusters] != "" || rows[1].Acked[Listeners] != nonce("4") {
		t.Errorf("ParseSyncz = %+v", rows)
	}
	if got := LastPush(rows); got != 6 {
		t.Errorf("LastPush = %d; want 6", got)
	}
	if _, err := ParseSyncz([]byte("<html>unauthorized</html>")); err == nil {
		t.Error("ParseSyncz of HTML: no error")
	}
}

// TestLagging: a proxy has a change once it acknowledged a push made after
// the mark for every watched type; proxies watching none of the types are
// not waited for.
func TestLagging(t *testing.T) {
	row := func(proxy string, typ, sent, acked string) ProxySync {
		return ProxySync{Proxy: proxy, Sent: map[string]string{typ: sent}, Acked: map[string]string{typ: acked}}
	}
	for _, tc := range []struct {
		name string
		rows []ProxySync
		want []string
	}{
		{"acked after the mark", []ProxySync{row("c", Routes, nonce("11"), nonce("11"))}, nil},
		{"no push since the mark", []ProxySync{row("c", Routes, nonce("10"), nonce("10"))},
			[]string{"c (route: no push after #10 yet)"}},
		{"sent, not yet acked", []ProxySync{row("c", Routes, nonce("12"), nonce("9"))},
			[]string{"c (route: push #12 sent, not acknowledged)"}},
		{"watches other types only", []ProxySync{row("server", Listeners, nonce("3"), nonce("3"))}, nil},
		{"sorted, several", []ProxySync{row("z", Routes, nonce("3"), nonce("3")), row("a", Routes, nonce("12"), "")},
			[]string{"a (route: push #12 sent, not acknowledged)", "z (route: no push after #10 yet)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lagging(tc.rows, 10, []string{Routes}); !slices.Equal(got, tc.want) {
				t.Errorf("Lagging = %q; want %q", got, tc.want)
			}
		})
	}
}
