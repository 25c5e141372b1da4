package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/returnsd/returnsd/money"
)

// The HTML reads the same in a browser and in a mail client: tables, inline
// styles only (mail clients drop style sheets), no external asset, no script.
// The trend chart is inline SVG; clients that do not draw SVG (Gmail,
// Outlook) have the trend's table right below it.

//go:embed templates/*.tmpl
var templateFiles embed.FS

// HTMLOptions tune the HTML rendering.
type HTMLOptions struct {
	// FileURL, when set, links each file to the page that shows it (the ops
	// pages' file view). Default: files are not linked.
	FileURL func(fileID int64) string
	// MaxFiles is how many of the files with rejected rows are listed, most
	// rejected first; quarantined files are all listed. Default: 20; a
	// negative number lists every file with rejected rows.
	MaxFiles int
}

// WriteHTML writes the report as a whole HTML document: the mail's body, or a
// page of its own.
func WriteHTML(w io.Writer, r *Report, o HTMLOptions) error {
	return execute(w, "document", r, o)
}

// WriteHTMLBody writes the report's body only, one <div> without <html>,
// <head> or <body>, to embed in another page (the ops pages' day view).
func WriteHTMLBody(w io.Writer, r *Report, o HTMLOptions) error {
	return execute(w, "body", r, o)
}

// htmlView is what the templates see.
type htmlView struct {
	*Report
	Options      HTMLOptions
	Chart        chart
	Problems     []File // quarantined
	Rejecting    []File // with rejected rows, most first, at most MaxFiles
	MoreRejected int    // files with rejected rows left out
	AgeGroups    []string
}

func execute(w io.Writer, name string, r *Report, o HTMLOptions) error {
	if o.MaxFiles == 0 {
		o.MaxFiles = 20
	}
	v := htmlView{Report: r, Options: o, Chart: trendChart(r.Trend), AgeGroups: shortAgeGroups()}
	for _, f := range r.Files {
		if f.Status == "QUARANTINED" {
			v.Problems = append(v.Problems, f)
		}
		if f.Rejected > 0 {
			v.Rejecting = append(v.Rejecting, f)
		}
	}
	slices.SortStableFunc(v.Rejecting, func(a, b File) int { return b.Rejected - a.Rejected })
	if o.MaxFiles > 0 && len(v.Rejecting) > o.MaxFiles {
		v.MoreRejected = len(v.Rejecting) - o.MaxFiles
		v.Rejecting = v.Rejecting[:o.MaxFiles]
	}
	t, err := templates(r.Location, o)
	if err != nil {
		return err
	}
	if err := t.ExecuteTemplate(w, name, v); err != nil {
		return fmt.Errorf("report: write HTML: %w", err)
	}
	return nil
}

// styles are the inline styles of the elements, by name.
var styles = map[string]string{
	"page":    "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;line-height:1.4;color:#1f2328;background:#ffffff;max-width:1100px;",
	"h1":      "font-size:22px;font-weight:600;margin:0 0 4px 0;",
	"h2":      "font-size:17px;font-weight:600;margin:24px 0 6px 0;padding-bottom:4px;border-bottom:1px solid #d0d7de;",
	"muted":   "color:#59636e;margin:0 0 12px 0;",
	"note":    "color:#59636e;font-size:13px;margin:4px 0 12px 0;",
	"table":   "border-collapse:collapse;margin:4px 0 12px 0;",
	"th":      "text-align:left;padding:4px 10px;border-bottom:2px solid #d0d7de;background:#f6f8fa;font-weight:600;white-space:nowrap;",
	"thn":     "text-align:right;padding:4px 10px;border-bottom:2px solid #d0d7de;background:#f6f8fa;font-weight:600;white-space:nowrap;",
	"td":      "text-align:left;padding:4px 10px;border-bottom:1px solid #eaeef2;vertical-align:top;",
	"tdn":     "text-align:right;padding:4px 10px;border-bottom:1px solid #eaeef2;vertical-align:top;white-space:nowrap;font-variant-numeric:tabular-nums;",
	"tdbad":   "text-align:right;padding:4px 10px;border-bottom:1px solid #eaeef2;vertical-align:top;white-space:nowrap;font-variant-numeric:tabular-nums;color:#cf222e;font-weight:600;",
	"tdtotal": "text-align:left;padding:4px 10px;border-top:2px solid #d0d7de;font-weight:600;",
	"tdntotal": "text-align:right;padding:4px 10px;border-top:2px solid #d0d7de;font-weight:600;white-space:nowrap;" +
		"font-variant-numeric:tabular-nums;",
	"tile":    "padding:8px 14px;border:1px solid #d0d7de;border-radius:6px;vertical-align:top;",
	"big":     "font-size:22px;font-weight:600;",
	"small":   "color:#59636e;font-size:12px;",
	"bad":     "color:#cf222e;font-weight:600;",
	"code":    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;",
	"link":    "color:#0969da;",
	"spacer":  "width:10px;",
	"svg":     "display:block;margin:4px 0 8px 0;max-width:100%;height:auto;",
	"chartbg": "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;font-size:11px;",
}

func templates(loc *time.Location, o HTMLOptions) (*template.Template, error) {
	funcs := template.FuncMap{
		"css": func(name string) template.CSS {
			s, ok := styles[name]
			if !ok {
				panic("report: no style " + name)
			}
			return template.CSS(s)
		},
		"num":      groupInt,
		"money":    groupAmount,
		"clock":    func(t time.Time) string { return clock(t, loc) },
		"zone":     func() string { return loc.String() },
		"age":      age,
		"f":        func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) },
		"negative": func(a money.Amount) bool { return a < 0 },
		"fileURL": func(id int64) string {
			if o.FileURL == nil {
				return ""
			}
			return o.FileURL(id)
		},
		"pastDeadline": func(p *int) string {
			if p == nil {
				return "—"
			}
			return groupInt(*p)
		},
		"status": func(s []StatusCount, status string) int {
			for _, c := range s {
				if c.Status == status {
					return c.Inquiries
				}
			}
			return 0
		},
		"resolved": func(s []StatusCount) int {
			n := 0
			for _, c := range s {
				n += c.Inquiries
			}
			return n
		},
		"auto": func(s []StatusCount) int {
			n := 0
			for _, c := range s {
				n += c.Auto
			}
			return n
		},
		"sources": func(s []string) string { return strings.Join(s, ", ") },
		"amounts": func(s []Amounts) string {
			if len(s) == 0 {
				return "0.00"
			}
			parts := make([]string, len(s))
			for i, a := range s {
				parts[i] = groupAmount(a.Amount) + " " + a.Currency
			}
			return strings.Join(parts, ", ")
		},
	}
	return template.New("report").Funcs(funcs).ParseFS(templateFiles, "templates/*.tmpl")
}

// groupInt writes n with thousands separators: 5,000,000.
func groupInt(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// groupAmount writes an amount with thousands separators: -1,234.50.
func groupAmount(a money.Amount) string {
	s := a.String()
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	n, _ := strconv.Atoi(whole)
	s = groupInt(n) + "." + frac
	if neg {
		s = "-" + s
	}
	return s
}

// clock writes a moment in the report's zone; "—" for none.
func clock(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// age writes a duration as people say it: 38 days, 5 hours, 12 minutes.
func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d >= 2*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	case d >= 2*time.Minute:
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	}
	return "just now"
}

// ageGroups names the groups of OpenAgeDays: under 7 days, 7–14 days, ...
func ageGroups() []string {
	out := make([]string, 0, len(OpenAgeDays)+1)
	for i, d := range OpenAgeDays {
		if i == 0 {
			out = append(out, fmt.Sprintf("under %d days", d))
			continue
		}
		out = append(out, fmt.Sprintf("%d–%d days", OpenAgeDays[i-1], d))
	}
	return append(out, fmt.Sprintf("%d days or more", OpenAgeDays[len(OpenAgeDays)-1]))
}

// shortAgeGroups are the groups' table headings: < 7 d, 7–14 d, ..., ≥ 30 d.
func shortAgeGroups() []string {
	out := make([]string, 0, len(OpenAgeDays)+1)
	for i, d := range OpenAgeDays {
		if i == 0 {
			out = append(out, fmt.Sprintf("< %d d", d))
			continue
		}
		out = append(out, fmt.Sprintf("%d–%d d", OpenAgeDays[i-1], d))
	}
	return append(out, fmt.Sprintf("≥ %d d", OpenAgeDays[len(OpenAgeDays)-1]))
}

// chart is the trend as SVG shapes, laid out here so the template only draws them.
type chart struct {
	Width, Height int
	Label         string // what the chart shows, for screen readers
	Rects         []rect
	Texts         []text
	Lines         []line
}

type rect struct {
	X, Y, W, H float64
	Fill       string
	Title      string
}

type text struct {
	X, Y   float64
	Anchor string // start, middle, end
	Fill   string
	Text   string
}

type line struct{ X1, Y1, X2, Y2 float64 }

// Colours of the chart's series.
const (
	colourCompleted   = "#0969da"
	colourDuplicate   = "#8c959f"
	colourQuarantined = "#bc4c00"
	colourWaiting     = "#d4a72c"
	colourApplied     = "#1a7f37"
	colourRejected    = "#cf222e"
	colourText        = "#59636e"
)

// trendChart lays out two bar charts, one above the other, sharing the days:
// files received (completed, duplicate, quarantined, stacked) and rows
// (applied, rejected, duplicate, stacked), each on its own scale.
func trendChart(days []TrendDay) chart {
	const width, left, right = 680.0, 64.0, 8.0
	c := chart{Width: int(width), Height: 282,
		Label: fmt.Sprintf("Files and rows per day, %d days", len(days))}
	legend := []struct{ fill, name string }{
		{colourCompleted, "completed"}, {colourDuplicate, "duplicate"}, {colourQuarantined, "quarantined"},
		{colourWaiting, "waiting"}, {colourApplied, "applied"}, {colourRejected, "rejected"},
	}
	x := left
	for _, l := range legend {
		c.Rects = append(c.Rects, rect{X: x, Y: 4, W: 10, H: 10, Fill: l.fill, Title: l.name})
		c.Texts = append(c.Texts, text{X: x + 14, Y: 13, Anchor: "start", Fill: colourText, Text: l.name})
		x += 14 + 7*float64(len(l.name)) + 14
	}
	if len(days) == 0 {
		return c
	}
	slot := (width - left - right) / float64(len(days))
	type series struct {
		value func(TrendDay) int
		fill  string
		name  string
	}
	panel := func(title string, top, height float64, unit string, ss []series) {
		peak := 1
		for _, d := range days {
			total := 0
			for _, s := range ss {
				total += s.value(d)
			}
			peak = max(peak, total)
		}
		bottom := top + height
		c.Texts = append(c.Texts,
			text{X: left, Y: top - 6, Anchor: "start", Fill: "#1f2328", Text: title},
			text{X: left - 6, Y: top + 4, Anchor: "end", Fill: colourText, Text: groupInt(peak)},
			text{X: left - 6, Y: bottom, Anchor: "end", Fill: colourText, Text: "0"})
		c.Lines = append(c.Lines, line{left, bottom, width - right, bottom})
		for i, d := range days {
			y := bottom
			for _, s := range ss {
				v := s.value(d)
				if v == 0 {
					continue
				}
				h := math.Max(height*float64(v)/float64(peak), 1)
				y -= h
				c.Rects = append(c.Rects, rect{X: left + float64(i)*slot + slot*0.15, Y: y, W: slot * 0.7, H: h, Fill: s.fill,
					Title: fmt.Sprintf("%s: %s %s %s", d.Day, groupInt(v), s.name, unit)})
			}
		}
	}
	panel("Files received", 40, 80, "files", []series{
		{func(d TrendDay) int { return d.Completed }, colourCompleted, "completed"},
		{func(d TrendDay) int { return d.Duplicate }, colourDuplicate, "duplicate"},
		{func(d TrendDay) int { return d.Quarantined }, colourQuarantined, "quarantined"},
		{func(d TrendDay) int { return d.Files - d.Completed - d.Duplicate - d.Quarantined }, colourWaiting, "waiting"},
	})
	panel("Rows of those files", 150, 100, "rows", []series{
		{func(d TrendDay) int { return d.Applied }, colourApplied, "applied"},
		{func(d TrendDay) int { return d.Rejected }, colourRejected, "rejected"},
		{func(d TrendDay) int { return d.DuplicateRows }, colourDuplicate, "duplicate"},
	})
	for i, d := range days {
		c.Texts = append(c.Texts, text{X: left + float64(i)*slot + slot/2, Y: 268, Anchor: "middle", Fill: colourText,
			Text: fmt.Sprintf("%02d-%02d", d.Day.Month, d.Day.Day)})
	}
	return c
}
