// Package locale holds Gatehouse's user-visible messages in de, en, es, fr,
// it and zh and picks one language from a user's preferences (an
// Accept-Language header, a --lang flag, LANG). English is the fallback.
package locale

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed messages/*.json
var messageFiles embed.FS

// Languages are the supported languages; the first is the fallback.
var Languages = []string{"en", "de", "es", "fr", "it", "zh"}

// Catalog localizes messages. It is safe for concurrent use.
type Catalog struct {
	matcher    language.Matcher
	localizers map[string]*i18n.Localizer
	ids        []string
}

// New loads the embedded catalogs. It fails only if a catalog is malformed,
// which the package's tests rule out.
func New() (*Catalog, error) {
	bundle := i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("json", json.Unmarshal)
	tags := make([]language.Tag, 0, len(Languages))
	c := &Catalog{localizers: make(map[string]*i18n.Localizer, len(Languages))}
	for _, lang := range Languages {
		mf, err := bundle.LoadMessageFileFS(messageFiles, "messages/"+lang+".json")
		if err != nil {
			return nil, fmt.Errorf("load %s messages: %w", lang, err)
		}
		if lang == Languages[0] {
			for _, m := range mf.Messages {
				c.ids = append(c.ids, m.ID)
			}
		}
		tags = append(tags, language.MustParse(lang))
		c.localizers[lang] = i18n.NewLocalizer(bundle, lang)
	}
	c.matcher = language.NewMatcher(tags)
	return c, nil
}

// Match returns the supported language that best fits prefs, each an
// Accept-Language value or a tag such as "de-CH" or "fr_FR.UTF-8" (the
// POSIX locales C and POSIX are English); English when nothing fits.
func (c *Catalog) Match(prefs ...string) string {
	var tags []language.Tag
	for _, p := range prefs {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		// POSIX locales (LANG=de_DE.UTF-8) are not BCP 47.
		p, _, _ = strings.Cut(p, ".")
		if p == "C" || p == "POSIX" {
			// The POSIX default locale: untranslated messages, English.
			tags = append(tags, language.English)
			continue
		}
		p = strings.ReplaceAll(p, "_", "-")
		parsed, _, err := language.ParseAcceptLanguage(p)
		if err != nil {
			continue
		}
		tags = append(tags, parsed...)
	}
	if len(tags) == 0 {
		return Languages[0]
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return Languages[0]
	}
	return Languages[i]
}

// Text returns message id in lang with data filled in; English if lang has
// no such message, and the id itself if no catalog has it.
func (c *Catalog) Text(lang, id string, data any) string {
	l, ok := c.localizers[lang]
	if !ok {
		l = c.localizers[Languages[0]]
	}
	msg, err := l.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if msg == "" && err != nil {
		return id
	}
	return msg
}

// IDs returns every message id of the English catalog.
func (c *Catalog) IDs() []string { return append([]string(nil), c.ids...) }

// Args fills the placeholders of decision messages.
type Args struct {
	Subject    string
	Permission string
	Tenant     string
	Plan       string
	Feature    string
	Action     string
	Limit      string
	// Resource and ResourceType name the request's resource.
	Resource     string
	ResourceType string
	// Scope is the tenant a tenant-scoped decision point serves;
	// SubjectType the request's subject type.
	Scope       string
	SubjectType string
}

// RequestArgs fills Args from what req asks: its subject, tenant, and
// permission or, when tool is set, the tool.
func RequestArgs(req *gatehouse.Request, tool string) Args {
	a := Args{Subject: req.Subject.String(), Permission: req.Permission, Tenant: req.Tenant,
		Resource: req.Resource.ID, ResourceType: req.Resource.Type}
	if tool != "" {
		a.Permission = tool
	}
	return a
}

// Reason returns the message for a decision. Args supply what the decision
// itself does not carry (the subject, permission or tool and tenant asked
// about); the decision's denied subject and missing permission take
// precedence, and its plan and feature fill in when Args leaves them empty.
func (c *Catalog) Reason(lang string, d gatehouse.Decision, a Args) string {
	if !d.Subject.IsZero() {
		a.Subject = d.Subject.String()
	}
	if d.Permission != "" && (d.Reason == gatehouse.ReasonPermissionMissing || d.Reason == gatehouse.ReasonConditionFailed) {
		// Name what is missing: for a tool that is the access permission
		// or the tool's own, not the tool.
		a.Permission = d.Permission
	}
	if a.Plan == "" {
		a.Plan = d.Plan
	}
	if a.Feature == "" {
		a.Feature = d.Feature
	}
	id := "reason." + string(d.Reason)
	if d.Reason == gatehouse.ReasonPlanRequired && a.Plan == "" {
		id = "reason.plan_required_none"
	}
	return c.Text(lang, id, a)
}

// Error returns the message for err's stable code (gatehouse.ErrorCode).
func (c *Catalog) Error(lang string, err error) string {
	return c.Text(lang, "error."+gatehouse.ErrorCode(err), nil)
}
