package compliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Output formats. JSON is always written (it is what Verify re-derives
// from); html and md are renderings of it.
const (
	FormatJSON = "json"
	FormatHTML = "html"
	FormatMD   = "md"
)

// File names inside a report directory.
var formatFiles = map[string]string{FormatJSON: "report.json", FormatHTML: "report.html", FormatMD: "report.md"}

// Render returns the report in format (json, html or md). The output
// depends on r only.
func Render(r *Report, format string) ([]byte, error) {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("compliance: encode report: %w", err)
		}
		return append(b, '\n'), nil
	case FormatHTML:
		var b bytes.Buffer
		if err := htmlTmpl.Execute(&b, r); err != nil {
			return nil, fmt.Errorf("compliance: render html: %w", err)
		}
		return b.Bytes(), nil
	case FormatMD:
		return renderMD(r), nil
	}
	return nil, fmt.Errorf("compliance: unknown format %q (json, html, md)", format)
}

var tmplFuncs = template.FuncMap{
	"ts":   ts,
	"lc":   func(s Status) string { return strings.ToLower(strings.ReplaceAll(string(s), " ", "-")) },
	"days": days,
}

var htmlTmpl = template.Must(template.New("report").Funcs(tmplFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kguard compliance report {{ts .Evidence.Since}} – {{ts .Evidence.Until}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1.5em}
th,td{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
th{background:#dde}
td.pass{background:#bfe8bf;font-weight:bold}
td.fail{background:#f4b6b6;font-weight:bold}
td.not-applicable{background:#e4e4e4}
pre{background:#f6f6f6;border:1px solid #ccc;padding:8px;font-size:12px;white-space:pre-wrap}
ul{font-size:14px}
</style></head><body>
<h1>kguard compliance report</h1>
<p>Period <b>{{ts .Evidence.Since}}</b> to <b>{{ts .Evidence.Until}}</b>; generated {{ts .Evidence.Generated}} by {{.Evidence.Generator}}; configuration sha256 {{.Evidence.ConfigSHA256}}.
Signed with the audit checkpoint key (report.sig); check with <code>kguard compliance verify DIR --pubkey KEY.pub</code>.</p>
<h2>Controls</h2>
<table id="controls"><thead><tr><th>Control</th><th>Framework</th><th>Requirement</th><th>Status</th><th>Summary</th></tr></thead><tbody>
{{range .Controls}}<tr><td><a href="#{{.ID}}">{{.ID}}</a></td><td>{{.Framework}}</td><td>{{.Title}}</td><td class="{{lc .Status}}">{{.Status}}</td><td>{{.Summary}}</td></tr>
{{end}}</tbody></table>
<h2>Inputs</h2>
<ul>{{range $k, $v := .Evidence.Inputs}}<li>{{$k}}: {{$v}}</li>{{end}}
{{range .Evidence.Ranges}}<li>audit range {{.Instance}}: seq {{.FirstSeq}}..{{.LastSeq}} ({{.Events}} events, {{ts .First}} – {{ts .Last}})</li>{{end}}
{{range .Evidence.Checkpoints}}<li>checkpoints {{.Instance}}: {{.Count}} in the period ({{.Failed}} failed); first seq {{.First.Seq}} (size {{.First.Size}}, root {{.First.Root}}, key {{.First.KeyID}}); last seq {{.Last.Seq}} (size {{.Last.Size}}, root {{.Last.Root}}, key {{.Last.KeyID}})</li>{{end}}
{{range .Evidence.Revisions}}<li>policy revision {{.Revision}} ({{ts .Loaded}}, {{.Instance}})</li>{{end}}
{{range .Evidence.KeyInfo}}<li>key {{.Name}}: current version {{.LatestVersion}}</li>{{end}}
</ul>
{{range .Evidence.Notes}}<p><b>Note:</b> {{.}}</p>{{end}}
<h2>Evidence per control</h2>
{{range .Controls}}<h3 id="{{.ID}}">{{.ID}} — {{.Status}}</h3><p>{{.Summary}}</p><ul>{{range .Evidence}}<li>{{.}}</li>{{end}}</ul>
{{end}}
<h2>Policy changes (SOX)</h2>
{{range .Evidence.Revisions}}<h3>revision {{.Revision}}</h3><p>loaded {{ts .Loaded}} by {{.Instance}} ({{.Reason}})</p>{{if .Diff}}<pre>{{.Diff}}</pre>{{end}}
{{end}}
{{if .Evidence.Findings}}<h2>Audit verifier findings</h2><ul>{{range .Evidence.Findings}}<li>{{.Severity}} {{.Kind}} {{.Instance}} seq {{.Seq}}: {{.Detail}}</li>{{end}}</ul>{{end}}
</body></html>
`))

func renderMD(r *Report) []byte {
	var b strings.Builder
	ev := &r.Evidence
	fmt.Fprintf(&b, "# kguard compliance report\n\nPeriod %s to %s; generated %s by %s; configuration sha256 %s.\n",
		ts(ev.Since), ts(ev.Until), ts(ev.Generated), ev.Generator, ev.ConfigSHA256)
	b.WriteString("Signed with the audit checkpoint key (report.sig); check with `kguard compliance verify DIR --pubkey KEY.pub`.\n\n")
	b.WriteString("## Controls\n\n| Control | Framework | Requirement | Status | Summary |\n|---|---|---|---|---|\n")
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "| %s | %s | %s | **%s** | %s |\n", mdCell(c.ID), mdCell(c.Framework), mdCell(c.Title), c.Status, mdCell(c.Summary))
	}
	b.WriteString("\n## Inputs\n\n")
	for _, k := range sortedKeys(ev.Inputs) {
		fmt.Fprintf(&b, "- %s: %s\n", k, ev.Inputs[k])
	}
	for _, x := range ev.Ranges {
		fmt.Fprintf(&b, "- audit range %s: seq %d..%d (%d events, %s – %s)\n", x.Instance, x.FirstSeq, x.LastSeq, x.Events, ts(x.First), ts(x.Last))
	}
	for _, c := range ev.Checkpoints {
		fmt.Fprintf(&b, "- checkpoints %s: %d in the period (%d failed); first seq %d (size %d, root %s, key %s); last seq %d (size %d, root %s, key %s)\n",
			c.Instance, c.Count, c.Failed, c.First.Seq, c.First.Size, c.First.Root, c.First.KeyID, c.Last.Seq, c.Last.Size, c.Last.Root, c.Last.KeyID)
	}
	for _, p := range ev.Revisions {
		fmt.Fprintf(&b, "- policy revision %s (%s, %s)\n", p.Revision, ts(p.Loaded), p.Instance)
	}
	for _, k := range ev.KeyInfo {
		fmt.Fprintf(&b, "- key %s: current version %d\n", k.Name, k.LatestVersion)
	}
	for _, n := range ev.Notes {
		fmt.Fprintf(&b, "\n**Note:** %s\n", n)
	}
	b.WriteString("\n## Evidence per control\n")
	for _, c := range r.Controls {
		fmt.Fprintf(&b, "\n### %s — %s\n\n%s\n\n", c.ID, c.Status, c.Summary)
		for _, e := range c.Evidence {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	b.WriteString("\n## Policy changes (SOX)\n")
	for _, p := range ev.Revisions {
		fmt.Fprintf(&b, "\n### revision %s\n\nloaded %s by %s (%s)\n", p.Revision, ts(p.Loaded), p.Instance, p.Reason)
		if p.Diff != "" {
			fmt.Fprintf(&b, "\n```diff\n%s\n```\n", strings.TrimRight(p.Diff, "\n"))
		}
	}
	if len(ev.Findings) > 0 {
		b.WriteString("\n## Audit verifier findings\n\n")
		for _, f := range ev.Findings {
			fmt.Fprintf(&b, "- %s %s %s seq %d: %s\n", f.Severity, f.Kind, f.Instance, f.Seq, f.Detail)
		}
	}
	return []byte(b.String())
}

func mdCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// ParseTime parses --since/--until: RFC 3339, or a duration meaning that
// long before now ("24h").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("compliance: %q is neither RFC 3339 nor a duration", s)
	}
	return t, nil
}
