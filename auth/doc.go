// Package auth implements the authentication mechanisms kguard terminates for
// its clients: SASL PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER as
// server-side exchanges, the salted credentials file behind PLAIN and SCRAM,
// and mTLS principals with Kafka's ssl.principal.mapping.rules semantics.
//
// The package knows nothing about Kafka framing: the proxy's SaslHandshake
// handler lists [Authenticator.Mechanisms] and calls [Authenticator.Start];
// its SaslAuthenticate handler feeds each client token to [Exchange.Step] and
// sends back the returned bytes. A failed login is an [*AuthError] whose
// Error() text is safe to send to the client; any other error is internal and
// must be answered with a generic message (see [ClientMessage]).
package auth
