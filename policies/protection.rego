# Data-protection rules (field-level encryption and signing).
#
# The engine evaluates data.kguard.protection.result with the input
#   {"principal": "User:alice", "tenant": "acme", "topic": "acme.payments"}
# and gets the rule for that topic, or undefined when the topic is unprotected.
#
# data.protection is an object of named rules: {"<rule name>": rule}. A rule:
#   topic | prefix | pattern   exact name, name prefix, or regex (one of them)
#   priority                   higher wins when several rules match (then the name, ascending)
#   fields                     [{"path": "$.card.number" | "$" | "key" | "header:NAME",
#                                "algorithm": "AES256_GCM" (default) | "AES256_SIV"}]
#   kek                        key-encryption key name template over {tenant} and {topic}
#                              (default "kguard-{tenant}-{topic}"; an empty tenant expands to "default")
#   subject_field              JSON path of the data subject for per-subject keys ("" = none)
#   sign                       sign records produced to the topic
#   decrypt                    {"principals": [...], "tenants": [...]} who may read plaintext
#                              ("User:*" for every principal)
#   on_denied                  "ciphertext" (default) | "mask": what others get
#   on_bad_signature           "mark" | "drop" | "fail" (default)
package kguard.protection

default rules := {}

rules := data.protection

topic_matches(r, t) if r.topic == t

topic_matches(r, t) if {
	r.prefix != ""
	startswith(t, r.prefix)
}

topic_matches(r, t) if regex.match(r.pattern, t)

candidates := sort([[0 - object.get(r, "priority", 0), name] |
	some name, r in rules
	topic_matches(r, input.topic)
])

rule_name := candidates[0][1]

rule := rules[rule_name]

tenant_name := input.tenant if {
	input.tenant != ""
} else := "default"

expand(tmpl) := replace(replace(tmpl, "{tenant}", tenant_name), "{topic}", input.topic)

decryptors := object.get(rule, "decrypt", {})

may_decrypt if input.principal in object.get(decryptors, "principals", [])

may_decrypt if "User:*" in object.get(decryptors, "principals", [])

may_decrypt if {
	input.tenant != ""
	input.tenant in object.get(decryptors, "tenants", [])
}

default decrypt := false

decrypt if may_decrypt

result := {
	"rule": rule_name,
	"fields": [{"path": f.path, "algorithm": object.get(f, "algorithm", "AES256_GCM")} | some f in rule.fields],
	"kek": expand(object.get(rule, "kek", "kguard-{tenant}-{topic}")),
	"subject_field": object.get(rule, "subject_field", ""),
	"sign": object.get(rule, "sign", false),
	"decrypt": decrypt,
	"on_denied": object.get(rule, "on_denied", "ciphertext"),
	"on_bad_signature": object.get(rule, "on_bad_signature", "fail"),
}
