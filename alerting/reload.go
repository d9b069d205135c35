package alerting

// Reload makes the next Observe read the saved states again and take them
// over the ones in memory: call it whenever this replica becomes the
// leader, since another replica may have fired or resolved alerts while it
// followed (without it, a resolve for an alert another replica fired is
// never sent, and the PagerDuty incident stays open).
func (t *Tracker) Reload() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg.State == nil {
		return
	}
	t.loaded, t.reload = false, true
}
