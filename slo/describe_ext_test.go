package slo

import "strings"

func describeGroup(b *strings.Builder, o Objective)     {}
func describeThreshold(b *strings.Builder, o Objective) {}
