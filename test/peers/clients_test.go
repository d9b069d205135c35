package peers

import (
	"testing"
)

// TestClientsAgainstALiveSlogate runs Argo Rollouts' web metric provider
// and Flagger's webhook client, on the examples in deploy/, against live
// slogate servers over one real Prometheus, case by case, and logs the
// table case × client → what the client concluded (docs/clients.md).
func TestClientsAgainstALiveSlogate(t *testing.T) {
	w := startWorld(t)
	var table conclusions
	t.Run("clients", func(t *testing.T) {
		t.Run("Argo Rollouts", func(t *testing.T) {
			t.Parallel()
			testArgoRollouts(t, w, &table)
		})
		t.Run("Flagger", func(t *testing.T) {
			t.Parallel()
			testFlagger(t, w, &table)
		})
	})
	t.Logf("what each client concluded:\n%s", table.markdown("Argo Rollouts", "Flagger"))
}
