package emit

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// testSecret is the secret of the Standard Webhooks test vectors.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSignVector(t *testing.T) {
	// The vector of the Standard Webhooks reference libraries.
	got, err := Sign(testSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	// The prefix is optional.
	bare, err := Sign(strings.TrimPrefix(testSecret, SecretPrefix), "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil || bare != got {
		t.Errorf("Sign without whsec_ = %q, %v; want %q", bare, err, got)
	}
}

func TestSignVerifiesWithStandardWebhooks(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"id":"evt_1","type":"contact.updated"}`)
	sig, err := Sign(testSecret, "evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	headers := func(id string, ts time.Time) http.Header {
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderWebhookSignature, sig)
		return h
	}
	if err := wh.Verify(body, headers("evt_1", now)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	tampered := []struct {
		name string
		body []byte
		h    http.Header
	}{
		{"body", []byte(`{"id":"evt_1","type":"contact.deleted"}`), headers("evt_1", now)},
		{"timestamp", body, headers("evt_1", now.Add(-time.Second))},
		{"id", body, headers("evt_2", now)},
	}
	for _, tt := range tampered {
		if err := wh.Verify(tt.body, tt.h); err == nil {
			t.Errorf("tampered %s: Verify passed", tt.name)
		}
	}
	other, err := standardwebhooks.NewWebhook("whsec_" + "c2VjcmV0LW9mLWFub3RoZXItcmVjZWl2ZXI=")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Verify(body, headers("evt_1", now)); err == nil {
		t.Error("another secret: Verify passed")
	}
}

func TestSigningKeyErrors(t *testing.T) {
	for _, secret := range []string{"", "whsec_", "whsec_not base64!", "MySecretEventSignatureKey"} {
		_, err := SigningKey(secret)
		if err == nil {
			t.Errorf("SigningKey(%q): no error", secret)
			continue
		}
		if rest := strings.TrimPrefix(secret, SecretPrefix); rest != "" && strings.Contains(err.Error(), rest) {
			t.Errorf("error shows the secret: %v", err)
		}
		if _, err := Sign(secret, "evt_1", time.Now(), nil); err == nil {
			t.Errorf("Sign(%q): no error", secret)
		}
	}
}

func TestCloudElementsSignature(t *testing.T) {
	// HMAC-SHA256 keyed by the plain string, as computed by
	// printf '{"a":1}' | openssl dgst -sha256 -hmac MySecretEventSignatureKey -binary | base64
	got := CloudElementsSignature("MySecretEventSignatureKey", []byte(`{"a":1}`))
	if want := "sha256=JV6qOpPuHn76+JrfxZ8ni8vV41Tc8YFeeAm7/WCe7Rw="; got != want {
		t.Errorf("CloudElementsSignature = %q, want %q", got, want)
	}
	// A whsec_ secret is used as written, not decoded.
	if a, b := CloudElementsSignature(testSecret, []byte("x")), CloudElementsSignature(strings.TrimPrefix(testSecret, SecretPrefix), []byte("x")); a == b {
		t.Error("the whsec_ prefix is not part of the Cloud Elements key")
	}
}
