package emit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request headers of a delivery.
const (
	// HeaderWebhookID is the Standard Webhooks message id: the event id, or
	// the batch id of a body of several events. Receivers de-duplicate on it.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the Standard Webhooks timestamp, in Unix
	// seconds, of the attempt.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature is the Standard Webhooks signature, sent when
	// the destination has a secret.
	HeaderWebhookSignature = "webhook-signature"
	// HeaderIdempotencyKey carries the webhook-id again. It tells a
	// receiver the same thing, and it lets Go's HTTP client send the
	// request again, on a new connection, when a kept-alive connection
	// the receiver closed (its idle timeout, as the request went out)
	// fails before any response: without it, Go retries no POST.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderElementsSignature is the Cloud Elements signature, sent by
	// format cloud-elements when the destination has a secret.
	HeaderElementsSignature = "Elements-Webhook-Signature"
)

// SecretPrefix starts a Standard Webhooks secret: whsec_ and the base64 of
// the signing key.
const SecretPrefix = "whsec_"

// SigningKey returns the Standard Webhooks signing key of a secret: the
// standard base64 decoding of what follows the whsec_ prefix (the prefix
// may be left out). The error never holds the secret.
func SigningKey(secret string) ([]byte, error) {
	s := strings.TrimPrefix(secret, SecretPrefix)
	if s == "" {
		return nil, errors.New("decode secret: empty (want whsec_ and a base64 key)")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode secret: want whsec_ and a base64 key: %w", err)
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature of a message:
// "v1,<base64 of HMAC-SHA256(key, msgID.timestamp.body)>", where timestamp
// is ts in Unix seconds and key is SigningKey(secret). It is the value of
// the webhook-signature header; receivers verify it with any Standard
// Webhooks library.
func Sign(secret string, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := SigningKey(secret)
	if err != nil {
		return "", err
	}
	return sign(key, msgID, ts, body), nil
}

func sign(key []byte, msgID string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// CloudElementsSignature returns the Elements-Webhook-Signature of body:
// "sha256=" and the base64 of HMAC-SHA256(key, body), as Cloud Elements
// signs its event notifications. The key is the secret exactly as
// configured, whsec_ prefix included and not base64-decoded, because Cloud
// Elements uses its "Callback Notification Signature Key" as a plain
// string: a receiver written for Cloud Elements verifies with the same
// string it is configured with.
func CloudElementsSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
