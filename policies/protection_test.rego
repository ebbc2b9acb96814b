package kguard.protection_test

import data.kguard.protection

rule(p, tenant, topic) := r if {
	r := protection.result with input as {"principal": p, "tenant": tenant, "topic": topic}
}

test_unprotected_topic if not rule("User:alice", "", "orders")

test_payments_for_allowed_reader if {
	r := rule("User:payments-service", "", "payments.cards")
	r.rule == "payments"
	r.decrypt == true
	r.sign == true
	r.kek == "kguard-default-payments"
	r.subject_field == "$.account_id"
	r.fields == [
		{"path": "$.card.number", "algorithm": "AES256_GCM"},
		{"path": "$.account_id", "algorithm": "AES256_SIV"},
		{"path": "header:customer-email", "algorithm": "AES256_GCM"},
	]
	r.on_bad_signature == "fail"
}

test_payments_for_other_reader if {
	r := rule("User:alice", "", "payments.cards")
	r.decrypt == false
	r.on_denied == "ciphertext"
}

test_kek_template_tenant if rule("User:x", "acme", "acme.payments.cards").kek == "kguard-acme-payments"

test_kek_template_topic if rule("User:crm", "acme", "customers-eu").kek == "kguard-acme-customers-eu"

test_whole_value_mask if {
	r := rule("User:alice", "", "customers-eu")
	r.fields == [{"path": "$", "algorithm": "AES256_GCM"}]
	r.decrypt == false
	r.on_denied == "mask"
	r.on_bad_signature == "mark"
}

test_priority_wins if rule("User:crm", "", "customers.payments.x").rule == "payments"

test_exact_topic_and_wildcard_reader if {
	r := rule("User:anyone", "", "ledger")
	r.decrypt == true
	r.fields == [{"path": "key", "algorithm": "AES256_SIV"}]
	r.on_bad_signature == "drop"
}

test_exact_topic_only if not rule("User:anyone", "", "ledger2")

test_decrypt_by_tenant if {
	rule("User:x", "acme", "payments.cards").decrypt with data.protection.payments.decrypt as {"tenants": ["acme"]}
}
