package money

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		text, currency string
		want           int64
		ok             bool
	}{
		{"49.99", "EUR", 4999, true},
		{"49.9", "EUR", 4990, true},
		{"100", "EUR", 10000, true},
		{" 0.01 ", "USD", 1, true},
		{"0", "EUR", 0, true},
		{"-0", "EUR", 0, true},
		{"0.000", "EUR", 0, true},
		{"1e3", "EUR", 100000, true},
		{"1500", "JPY", 1500, true},
		{"1.234", "KWD", 1234, true},
		{"10000000000000", "EUR", MaxMinor, true},
		{"10000000000000.01", "EUR", 0, false},
		{"1500.5", "JPY", 0, false},
		{"49.999", "EUR", 0, false},
		{"-1", "EUR", 0, false},
		{"-0.01", "EUR", 0, false},
		{"NaN", "EUR", 0, false},
		{"Inf", "EUR", 0, false},
		{"+Inf", "EUR", 0, false},
		{"1e999999999", "EUR", 0, false},
		{"1e-999999999", "EUR", 0, false},
		{"", "EUR", 0, false},
		{"abc", "EUR", 0, false},
		{"1,50", "EUR", 0, false},
		{"12345678901234567890123456789012345678901234567890123456789012345", "EUR", 0, false},
		{"10", "eur", 0, false},
		{"10", "EURO", 0, false},
		{"10", "XYZ", 0, false},
		{"10", "", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.text, tt.currency)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseAmount(%q, %q) = %d, %v; want %d", tt.text, tt.currency, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("ParseAmount(%q, %q) = %d, %v; want ErrInvalid", tt.text, tt.currency, got, err)
		}
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		text string
		want int64
		ok   bool
	}{
		{"15", 1500, true},
		{"12.5", 1250, true},
		{"0.01", 1, true},
		{"100", MaxPercent, true},
		{"0", 0, true},
		{"100.01", 0, false},
		{"101", 0, false},
		{"0.001", 0, false},
		{"-5", 0, false},
		{"NaN", 0, false},
	}
	for _, tt := range tests {
		got, err := ParsePercent(tt.text)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", tt.text, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("ParsePercent(%q) = %d, %v; want ErrInvalid", tt.text, got, err)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{4999, "EUR", "49.99"},
		{5, "EUR", "0.05"},
		{0, "USD", "0.00"},
		{1500, "JPY", "1500"},
		{1234, "KWD", "1.234"},
	}
	for _, tt := range tests {
		if got := FormatAmount(tt.minor, tt.currency); got != tt.want {
			t.Errorf("FormatAmount(%d, %q) = %q, want %q", tt.minor, tt.currency, got, tt.want)
		}
	}
	if got := FormatPercent(1250); got != "12.5" {
		t.Errorf("FormatPercent(1250) = %q, want 12.5", got)
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		in   any
		want string
		ok   bool
	}{
		{json.Number("49.99"), "49.99", true},
		{"12.50", "12.50", true},
		{49.99, "49.99", true},
		{0.1, "0.1", true},
		{int64(7), "7", true},
		{3, "3", true},
		{math.NaN(), "", false},
		{math.Inf(1), "", false},
		{true, "", false},
		{nil, "", false},
		{map[string]any{}, "", false},
		{[]any{1.0}, "", false},
	}
	for _, tt := range tests {
		got, err := Text(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("Text(%#v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("Text(%#v) = %q, %v; want ErrInvalid", tt.in, got, err)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"49.99", "1e3", "-1", "NaN", "0.000", "1e999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		minor, err := ParseAmount(s, "EUR")
		if err != nil {
			return
		}
		if minor < 0 || minor > MaxMinor {
			t.Fatalf("ParseAmount(%q) = %d, outside 0…MaxMinor", s, minor)
		}
		back, err := ParseAmount(FormatAmount(minor, "EUR"), "EUR")
		if err != nil || back != minor {
			t.Fatalf("ParseAmount(FormatAmount(%d)) = %d, %v", minor, back, err)
		}
	})
}
