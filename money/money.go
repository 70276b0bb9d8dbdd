// Package money turns decimal text into exact integers and back: amounts in
// the minor units of an ISO 4217 currency (cents for EUR, yen for JPY) and
// percentages in hundredths of a percent. Gatehouse never computes with
// floats: limits and tool arguments are parsed here once, with
// github.com/shopspring/decimal, and compared as int64. Currency scales come
// from CLDR through golang.org/x/text/currency.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"

	"github.com/gatehouse/gatehouse"
)

// MaxMinor bounds an amount in minor units (10^15: ten trillion euros), so
// that sums over a window of many amounts stay far from int64's limit.
const MaxMinor = 1_000_000_000_000_000

// PercentScale is the number of decimals a percentage may have; percentages
// are stored in units of 10^-PercentScale percent (basis points).
const PercentScale = 2

// MaxPercent is 100% in basis points.
const MaxPercent = 100 * 100

// maxText bounds decimal text, so a request cannot make parsing expensive.
const maxText = 64

// Scale returns the number of minor-unit decimals of an ISO 4217 currency
// code written in upper case ("EUR" → 2, "JPY" → 0). Anything else is
// gatehouse.ErrInvalid.
func Scale(code string) (int32, error) {
	if len(code) != 3 || strings.ToUpper(code) != code {
		return 0, gatehouse.Invalidf("currency %q: want a three-letter ISO 4217 code in upper case, e.g. EUR", code)
	}
	u, err := currency.ParseISO(code)
	if err != nil {
		return 0, gatehouse.Invalidf("currency %q: not an ISO 4217 currency", code)
	}
	scale, _ := currency.Standard.Rounding(u)
	return int32(scale), nil
}

// parse reads a non-negative decimal of at most scale decimals and returns
// it as an integer count of 10^-scale units, at most limit.
func parse(text string, scale int32, limit int64, what string) (int64, error) {
	t := strings.TrimSpace(text)
	if t == "" {
		return 0, gatehouse.Invalidf("%s is empty", what)
	}
	if len(t) > maxText {
		return 0, gatehouse.Invalidf("%s %.20q…: longer than %d characters", what, t, maxText)
	}
	// NewFromString accepts exponents ("1e3") but no NaN or Inf.
	d, err := decimal.NewFromString(t)
	if err != nil {
		return 0, gatehouse.Invalidf("%s %q is not a decimal number", what, t)
	}
	if d.IsNegative() {
		return 0, gatehouse.Invalidf("%s %q is negative", what, t)
	}
	// A huge exponent ("1e999999999") would make comparing expensive.
	if e := d.Exponent(); e > maxText || e < -maxText {
		return 0, gatehouse.Invalidf("%s %q is out of range", what, t)
	}
	units := d.Shift(scale)
	if !units.IsInteger() {
		return 0, gatehouse.Invalidf("%s %q has more than %d decimals", what, t, scale)
	}
	if units.GreaterThan(decimal.NewFromInt(limit)) {
		return 0, gatehouse.Invalidf("%s %q is larger than %s", what, t, format(limit, scale))
	}
	return units.IntPart(), nil
}

// ParseAmount returns text, a decimal such as "49.99", in minor units of
// currency. Negative numbers, NaN, Inf, more decimals than the currency has
// and amounts above MaxMinor are gatehouse.ErrInvalid.
func ParseAmount(text, code string) (int64, error) {
	scale, err := Scale(code)
	if err != nil {
		return 0, err
	}
	return parse(text, scale, MaxMinor, "amount")
}

// ParsePercent returns text, a percentage such as "12.5", in hundredths of
// a percent; it must lie within 0–100 and have at most two decimals.
func ParsePercent(text string) (int64, error) {
	return parse(text, PercentScale, MaxPercent, "percentage")
}

// FormatAmount writes minor units of currency as a decimal with the
// currency's decimals ("1250", "EUR" → "12.50"); an unknown currency is
// written with no decimals.
func FormatAmount(minor int64, code string) string {
	scale, err := Scale(code)
	if err != nil {
		scale = 0
	}
	return format(minor, scale)
}

// FormatPercent writes hundredths of a percent as a percentage ("1250" → "12.5").
func FormatPercent(units int64) string {
	return decimal.New(units, -PercentScale).String()
}

func format(units int64, scale int32) string {
	return decimal.New(units, -scale).StringFixed(scale)
}

// Text returns the decimal text of a number as it arrives in decoded JSON or
// YAML: a json.Number or string as written, an integer, or a float64 by its
// shortest exact representation. Booleans, null, NaN, Inf, objects and
// lists are gatehouse.ErrInvalid.
func Text(v any) (string, error) {
	switch x := v.(type) {
	case json.Number:
		return string(x), nil
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", gatehouse.Invalidf("number %v is not finite", x)
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", gatehouse.Invalidf("the value is null")
	}
	return "", gatehouse.Invalidf("want a number or a decimal string, got %s", describe(v))
}

func describe(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// MaxWindow bounds a limit's rolling window.
const MaxWindow = 400 * 24 * time.Hour

// FieldError is one problem of an ActionLimits: the field's document name
// and what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// Limits checks l and returns it in exact integers. Every problem is
// reported: amounts need a currency and must be positive and exact in it,
// percentages lie within (0, 100], a window is a positive Go duration (such
// as "24h") of at most MaxWindow, max_count is positive, and a window and
// the limits counted over it come together.
func Limits(l gatehouse.ActionLimits) (gatehouse.Limits, []FieldError) {
	var (
		out      = gatehouse.Limits{Currency: l.Currency}
		problems []FieldError
	)
	fail := func(field string, err error) {
		msg := err.Error()
		if errors.Is(err, gatehouse.ErrInvalid) {
			msg = strings.TrimSuffix(msg, ": "+gatehouse.ErrInvalid.Error())
		}
		problems = append(problems, FieldError{field, msg})
	}
	needCurrency := l.MaxAmount != "" || l.MaxTotalAmount != ""
	if l.Currency != "" {
		if _, err := Scale(l.Currency); err != nil {
			fail("currency", err)
			needCurrency = false
		}
	} else if needCurrency {
		fail("currency", errors.New("currency is required with max_amount or max_total_amount"))
		needCurrency = false
	}
	amount := func(field string, text gatehouse.Decimal) int64 {
		if text == "" || l.Currency == "" || !needCurrency {
			return 0
		}
		v, err := ParseAmount(string(text), l.Currency)
		if err == nil && v == 0 {
			err = errors.New("must be positive")
		}
		if err != nil {
			fail(field, err)
		}
		return v
	}
	out.MaxAmount = amount("max_amount", l.MaxAmount)
	out.MaxTotalAmount = amount("max_total_amount", l.MaxTotalAmount)
	if l.MaxPercentage != "" {
		v, err := ParsePercent(string(l.MaxPercentage))
		if err == nil && v == 0 {
			err = errors.New("must be positive")
		}
		if err != nil {
			fail("max_percentage", err)
		}
		out.MaxPercentage = v
	}
	if l.MaxCount != nil {
		if *l.MaxCount <= 0 {
			fail("max_count", fmt.Errorf("max_count %d must be positive", *l.MaxCount))
		} else {
			out.MaxCount = *l.MaxCount
		}
	}
	counted := l.MaxCount != nil || l.MaxTotalAmount != ""
	switch {
	case l.Window != "":
		w, err := time.ParseDuration(strings.TrimSpace(l.Window))
		switch {
		case err != nil:
			fail("window", fmt.Errorf("window %q is not a duration such as 24h or 30m", l.Window))
		case w <= 0:
			fail("window", fmt.Errorf("window %q must be positive", l.Window))
		case w > MaxWindow:
			fail("window", fmt.Errorf("window %q is longer than %s", l.Window, MaxWindow))
		default:
			out.Window = w
		}
		if !counted {
			fail("window", errors.New("a window needs max_count or max_total_amount"))
		}
	case counted:
		field := "max_total_amount"
		if l.MaxCount != nil {
			field = "max_count"
		}
		fail(field, errors.New("needs a window, such as window: 24h"))
	}
	return out, problems
}
