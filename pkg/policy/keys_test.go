package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestKeys_Authenticate(t *testing.T) {
	ks, err := NewKeys([]StaticKey{{ID: "a", Secret: "sk-a", Models: []string{"m1"}}, {Secret: "sk-b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret string
		wantID       string
		wantErr      error
	}{
		{"known", "sk-a", "a", nil},
		{"derived id", "sk-b", DefaultKeyID("sk-b"), nil},
		{"missing", "", "", ErrKeyMissing},
		{"unknown", "sk-c", "", ErrKeyUnknown},
		{"prefix of a key", "sk-", "", ErrKeyUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ks.Authenticate(tc.secret)
			if !errors.Is(err, tc.wantErr) || (err == nil && k.ID != tc.wantID) {
				t.Fatalf("Authenticate(%q) = %v, %v", tc.secret, k, err)
			}
		})
	}
}

func TestKey_CheckModel(t *testing.T) {
	restricted := &Key{ID: "r", Models: []string{"m1"}}
	open := &Key{ID: "o"}
	if restricted.CheckModel("m1") != nil || open.CheckModel("anything") != nil {
		t.Error("allowed model rejected")
	}
	err := restricted.CheckModel("m2")
	if !errors.Is(err, ErrModelNotAllowed) || !strings.Contains(err.Error(), `"m2"`) {
		t.Errorf("CheckModel(m2) = %v", err)
	}
}

func TestNewKeys_Rejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []StaticKey
		want string
	}{
		{"empty secret", []StaticKey{{ID: "a"}}, "empty secret"},
		{"duplicate secret", []StaticKey{{ID: "a", Secret: "s"}, {ID: "b", Secret: "s"}}, "secret is used twice"},
		{"duplicate id", []StaticKey{{ID: "a", Secret: "s1"}, {ID: "a", Secret: "s2"}}, `id "a" is used twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeys(tc.keys); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewKeys error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestKey_LogValueHidesSecret(t *testing.T) {
	ks, _ := NewKeys([]StaticKey{{ID: "a", Secret: "sk-secret"}})
	k, _ := ks.Authenticate("sk-secret")
	if v := k.LogValue().String(); strings.Contains(v, "sk-secret") || v != "a" {
		t.Errorf("LogValue = %q", v)
	}
}
