package slo

import "fmt"

// Sloth's Kubernetes form: apiVersion sloth.slok.dev/v1, kind
// PrometheusServiceLevel (https://sloth.dev/specs/kubernetes/). Its spec is
// the prometheus/v1 file with camelCase fields; it maps onto the same
// objectives, named <spec.service>-<slo name> as Sloth names them.

const slothCRDAPIVersion = "sloth.slok.dev/v1"

// k8sMetadata is the part of a Kubernetes object's metadata slogate reads.
type k8sMetadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type slothCRD struct {
	APIVersion string      `yaml:"apiVersion"`
	Kind       string      `yaml:"kind"`
	Metadata   k8sMetadata `yaml:"metadata"`
	Spec       struct {
		Service    string            `yaml:"service"`
		Labels     map[string]string `yaml:"labels"`
		SLOPlugins *struct {
			Chain []struct {
				ID string `yaml:"id"`
			} `yaml:"chain"`
		} `yaml:"sloPlugins"`
		SLOs []slothCRDSLO `yaml:"slos"`
	} `yaml:"spec"`
}

type slothCRDSLO struct {
	Name        string            `yaml:"name"`
	Objective   float64           `yaml:"objective"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	Plugins     *struct {
		Chain []struct {
			ID string `yaml:"id"`
		} `yaml:"chain"`
	} `yaml:"plugins"`
	SLI struct {
		Events *struct {
			ErrorQuery string `yaml:"errorQuery"`
			TotalQuery string `yaml:"totalQuery"`
		} `yaml:"events"`
		Raw *struct {
			ErrorRatioQuery string `yaml:"errorRatioQuery"`
		} `yaml:"raw"`
		Plugin *slothPlugin `yaml:"plugin"`
	} `yaml:"sli"`
	Alerting struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
		PageAlert   slothAlert        `yaml:"pageAlert"`
		TicketAlert slothAlert        `yaml:"ticketAlert"`
	} `yaml:"alerting"`
}

var slothCRDFields = slothFields{"errorQuery", "totalQuery", "errorRatioQuery", "sloth-crd"}

func (d *document) slothCRD(kind string) {
	if kind != "PrometheusServiceLevel" {
		d.errorf("kind", "unknown kind %q for %s (want PrometheusServiceLevel)", kind, slothCRDAPIVersion)
		return
	}
	var doc slothCRD
	if !d.decode(d.root, &doc, "") {
		return
	}
	if doc.Spec.SLOPlugins != nil {
		d.errorf("spec.sloPlugins", "Sloth SLO plugins are not supported: they rewrite the SLO in Go code slogate does not run")
		return
	}
	slos := make([]slothSLO, len(doc.Spec.SLOs))
	for i, s := range doc.Spec.SLOs {
		if s.Plugins != nil {
			d.errorf(fmt.Sprintf("spec.slos[%d].plugins", i), "Sloth SLO plugins are not supported: they rewrite the SLO in Go code slogate does not run")
			return
		}
		slos[i] = slothSLO{
			Name: s.Name, Objective: s.Objective, Description: s.Description, Labels: s.Labels,
			SLI: slothSLI{Plugin: s.SLI.Plugin},
			Alerting: slothAlerting{
				Name: s.Alerting.Name, Labels: s.Alerting.Labels, Annotations: s.Alerting.Annotations,
				PageAlert: s.Alerting.PageAlert, TicketAlert: s.Alerting.TicketAlert,
			},
		}
		if e := s.SLI.Events; e != nil {
			slos[i].SLI.Events = &slothEvents{ErrorQuery: e.ErrorQuery, TotalQuery: e.TotalQuery}
		}
		if r := s.SLI.Raw; r != nil {
			slos[i].SLI.Raw = &slothRaw{ErrorRatioQuery: r.ErrorRatioQuery}
		}
	}
	n := len(d.l.slos)
	d.slothSLOs(doc.Spec.Service, doc.Spec.Labels, slos, "spec.", slothCRDFields)
	for _, r := range d.l.slos[n:] {
		d.groupAnnotations(&r.obj, doc.Metadata.Annotations)
	}
}
