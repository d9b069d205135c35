package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Alertmanager is a real Alertmanager (Debian package
// prometheus-alertmanager: 0.25 on bookworm) started by a test.
type Alertmanager struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL     string
	Process *Process
}

// Stop ends the server by its PID (it is stopped at the test's end anyway).
func (a *Alertmanager) Stop() { a.Process.Stop() }

// AlertmanagerGroupInterval is the group_interval of the test
// configuration: how soon a change of an alert (its resolution) reaches
// the webhook after the first notification.
const AlertmanagerGroupInterval = time.Second

// StartAlertmanager starts an Alertmanager that routes every alert, each
// in its own group (group_by: ['...']), to one webhook receiver at
// receiverURL, at once (group_wait 0s) and with resolutions
// (send_resolved). Clustering is off (an empty --cluster.listen-address),
// so it opens no gossip port. The server is stopped by its PID when the
// test ends. Without the binary it fails under CI=true and skips
// elsewhere.
func StartAlertmanager(t testing.TB, receiverURL string) *Alertmanager {
	t.Helper()
	bin := Binary(t, "prometheus-alertmanager", "prometheus-alertmanager", "/usr/bin")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	conf := fmt.Sprintf(`route:
  receiver: test
  group_by: ['...']
  group_wait: 0s
  group_interval: %s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %s
        send_resolved: true
`, AlertmanagerGroupInterval, strconv.Quote(receiverURL))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatalf("alertmanager config: %v", err)
	}
	storage := filepath.Join(dir, "data")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		t.Fatalf("alertmanager storage: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+storage,
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=warn",
	)
	p := Start(t, "alertmanager", cmd)
	url := "http://" + addr
	WaitHTTP(t, p, url+"/-/ready", 30*time.Second)
	return &Alertmanager{URL: url, Process: p}
}
