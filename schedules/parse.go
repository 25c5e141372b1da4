package schedules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
)

// Parse reads a cron expression in robfig/cron's standard syntax:
//
//   - 5 fields, minute hour day-of-month month day-of-week, each *, ?, N,
//     N-M or a comma list of those, each with an optional /STEP; months and
//     days of the week also by name (JAN-DEC, SUN-SAT; 0 is Sunday);
//   - or a descriptor: @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight), @hourly, or @every DURATION (a Go duration of whole
//     seconds, at least 1s, e.g. 10m or 1h30m);
//   - optionally prefixed with CRON_TZ=Zone or TZ=Zone, an IANA zone name.
//
// Without a prefix the schedule is read on the wall clock of defaultZone (UTC
// when nil). An expression that can never run (0 0 30 2 *) is refused.
//
// Errors start with the expression quoted and name each faulty field and
// value, so they read well after a config path: `sources[0].schedule: "99 99
// * * *": minute "99": 99 is not in 0-59; hour "99": 99 is not in 0-23`.
func Parse(spec string, defaultZone *time.Location) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return Schedule{}, errors.New("empty schedule; want 5 fields (minute hour day-of-month month day-of-week) or a descriptor such as @hourly")
	}
	zone, expr, err := cutZone(spec)
	if err != nil {
		return Schedule{}, err
	}
	if zone == nil {
		zone = orUTC(defaultZone)
	}
	r, err := parseRule(spec, expr, zone)
	if err != nil {
		return Schedule{}, err
	}
	return Schedule{spec: spec, location: zone, rule: r}, nil
}

func orUTC(z *time.Location) *time.Location {
	if z == nil {
		return time.UTC
	}
	return z
}

// cutZone splits an optional CRON_TZ= or TZ= prefix off spec. robfig's own
// parser panics on a prefix with nothing after it and reads TZ=Local as
// "no zone", so the prefix is handled here.
func cutZone(spec string) (*time.Location, string, error) {
	var rest string
	var found bool
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if rest, found = strings.CutPrefix(spec, prefix); found {
			break
		}
	}
	if !found {
		return nil, spec, nil
	}
	name, expr := rest, ""
	if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
		name, expr = rest[:i], strings.TrimSpace(rest[i:])
	}
	prefix, _, _ := strings.Cut(spec, "=")
	switch {
	case name == "":
		return nil, "", fmt.Errorf("%q: %s= names no time zone", spec, prefix)
	case name == "Local":
		return nil, "", fmt.Errorf("%q: %q is whatever zone the machine has; name an IANA time zone such as Europe/Berlin", spec, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, "", fmt.Errorf("%q: %q is not a known IANA time zone", spec, name)
	}
	if expr == "" {
		return nil, "", fmt.Errorf("%q: nothing follows the time zone; want 5 fields or a descriptor such as @hourly", spec)
	}
	return loc, expr, nil
}

// parseRule reads expr, the spec without its zone prefix.
func parseRule(spec, expr string, zone *time.Location) (rule, error) {
	fields := strings.Fields(expr)
	if strings.HasPrefix(expr, "@") {
		if fields[0] == "@every" {
			return parseEvery(spec, fields)
		}
		return parseDescriptor(spec, fields, zone)
	}
	if len(fields) != len(fieldRules) {
		return nil, fmt.Errorf("%q has %d fields; want 5 (minute hour day-of-month month day-of-week)", spec, len(fields))
	}
	parsed, err := fiveFields.Parse(strings.Join(fields, " "))
	if err != nil {
		if why := explainFields(fields); why != "" {
			return nil, fmt.Errorf("%q: %s", spec, why)
		}
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	return newWallClock(spec, parsed.(*cron.SpecSchedule), zone)
}

// fiveFields is robfig's standard parser without descriptors, which
// parseDescriptor and parseEvery handle, and without zone prefixes, which
// cutZone handles.
var fiveFields = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// descriptors is robfig's list; parseDescriptor checks a name is on it first
// so an unknown one gets the list in its error.
var descriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

func parseDescriptor(spec string, fields []string, zone *time.Location) (rule, error) {
	if len(fields) != 1 || !descriptors[fields[0]] {
		return nil, fmt.Errorf("%q is not a cron descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 10m)", spec)
	}
	parsed, err := cron.ParseStandard(fields[0])
	if err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	return newWallClock(spec, parsed.(*cron.SpecSchedule), zone)
}

// parseEvery reads "@every DURATION". robfig rounds sub-second parts away and
// makes anything under a second one second; say so instead.
func parseEvery(spec string, fields []string) (rule, error) {
	if len(fields) != 2 {
		return nil, fmt.Errorf("%q: @every needs a duration such as 10m or 1h30m", spec)
	}
	d, err := time.ParseDuration(fields[1])
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q: %q is not a duration such as 10m or 1h30m (units h, m, s)", spec, fields[1])
	case d < time.Second:
		return nil, fmt.Errorf("%q: @every needs at least 1s", spec)
	case d%time.Second != 0:
		return nil, fmt.Errorf("%q: @every needs whole seconds", spec)
	}
	return every{interval: d}, nil
}

// fieldRule is what one of the 5 fields accepts, for error messages.
type fieldRule struct {
	name     string
	min, max int
	names    map[string]int // month or day names, lower-case
	nameHint string         // how a name is written, after "is not a number"
	rangeSub string         // said after "is not in min-max"
}

var fieldRules = [5]fieldRule{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}, nameHint: " or a month name (JAN-DEC)"},
	{name: "day-of-week", min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}, nameHint: " or a day name (SUN-SAT)", rangeSub: " (0 is Sunday)"},
}

// explainFields says what is wrong with each field robfig refused, in the
// terms of the field ("hour "24": 24 is not in 0-23") rather than robfig's
// ("end of range (24) above maximum (23): 24"). It returns "" when it finds
// nothing, and the caller falls back to robfig's message.
func explainFields(fields []string) string {
	var problems []string
	for i, f := range fields {
		if why := fieldRules[i].explain(f); why != "" {
			problems = append(problems, fmt.Sprintf("%s %q: %s", fieldRules[i].name, f, why))
		}
	}
	return strings.Join(problems, "; ")
}

// explain checks a field the way robfig's getField reads it: a comma list of
// *, ?, N or N-M, each with an optional /STEP.
func (r fieldRule) explain(field string) string {
	for _, item := range strings.Split(field, ",") {
		if item == "" {
			continue // robfig skips empty list items
		}
		if why := r.explainItem(item); why != "" {
			return why
		}
	}
	return ""
}

func (r fieldRule) explainItem(item string) string {
	shape := fmt.Sprintf("%q is not N, N-M or *, each with an optional /STEP", item)
	span, step, hasStep := strings.Cut(item, "/")
	if strings.Contains(step, "/") {
		return shape
	}
	if hasStep {
		if n, err := strconv.Atoi(step); err != nil || n <= 0 {
			return fmt.Sprintf("the step %q is not a whole number above 0", step)
		}
	}
	if span == "*" || span == "?" {
		return ""
	}
	bounds := strings.Split(span, "-")
	if len(bounds) > 2 {
		return shape
	}
	values := make([]int, len(bounds))
	for i, b := range bounds {
		if b == "" {
			return shape
		}
		v, why := r.value(b)
		if why != "" {
			return why
		}
		values[i] = v
	}
	if len(values) == 2 && values[0] > values[1] {
		return fmt.Sprintf("the range %s runs backwards", span)
	}
	return ""
}

// value reads a number or a name and checks its range.
func (r fieldRule) value(s string) (int, string) {
	if n, ok := r.names[strings.ToLower(s)]; ok {
		return n, ""
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Sprintf("%q is not a number%s", s, r.nameHint)
	}
	if n < r.min || n > r.max {
		return 0, fmt.Sprintf("%d is not in %d-%d%s", n, r.min, r.max, r.rangeSub)
	}
	return n, ""
}
