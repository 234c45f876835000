package check

import "testing"

func TestCronSchedule(t *testing.T) {
	cj := func(s string) string {
		return "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c, namespace: a}\nspec:\n  schedule: '" + s + "'\n  jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: a:1}]}}}}\n"
	}
	runCases(t, cronSchedule{}, []checkCase{
		{name: "five fields", fixture: cj("*/5 * * * 1-5"), want: none},
		{name: "descriptor", fixture: cj("@daily"), want: none},
		{name: "six fields", fixture: cj("0 */5 * * * *"), want: []Severity{Error}},
		{name: "out of range", fixture: cj("61 * * * *"), want: []Severity{Error}},
		{name: "embedded zone", fixture: cj("CRON_TZ=UTC 0 3 * * *"), want: []Severity{Error}},
	})
}
