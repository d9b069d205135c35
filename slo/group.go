package slo

// groupBy reads an objective's grouping labels (Pyrra's grouping, the
// slogate.dev/groupBy extension): one objective per label value.
func (d *document) groupBy(obj *Objective, labels []string, path string) bool {
	if len(labels) == 0 {
		return true
	}
	d.errorf(path, "grouping is not supported yet: write one SLO per label value")
	return false
}
