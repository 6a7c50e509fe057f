-- The notify service's own tables: subscriptions, the outbox of deliveries
-- (one row per event per matching subscription, written in the same
-- transaction that records the event as applied), every attempt at a
-- delivery, and a small read model of items for readable summaries.
-- Enum columns hold the proto enum numbers.

CREATE TABLE notify_subscriptions (
    id uuid PRIMARY KEY,
    -- SubscriptionEvent values.
    events integer[] NOT NULL,
    subject_filter text NOT NULL DEFAULT '',
    -- Empty: every organisation.
    organisation_ids text[] NOT NULL DEFAULT '{}',
    webhook_url text,
    email_address text,
    -- EmailMode.
    email_mode integer NOT NULL DEFAULT 0,
    secret text NOT NULL,
    -- SubscriptionState.
    state integer NOT NULL,
    owner_organisation_id text NOT NULL DEFAULT '',
    created_by text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The delivery worker holding this subscription (one per subscription
    -- across replicas, so its deliveries stay in order).
    lease_owner uuid,
    lease_until timestamptz,
    CHECK ((webhook_url IS NULL) <> (email_address IS NULL))
);

CREATE TABLE notify_deliveries (
    id uuid PRIMARY KEY,
    -- Order of deliveries within a subscription.
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    subscription_id uuid NOT NULL REFERENCES notify_subscriptions (id) ON DELETE CASCADE,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    organisation_id text NOT NULL,
    -- The EventEnvelope, protobuf-encoded.
    envelope bytea NOT NULL,
    summary text NOT NULL,
    -- DeliveryStatus.
    status integer NOT NULL,
    -- Attempts ever made (numbers the attempt rows).
    attempts integer NOT NULL DEFAULT 0,
    -- Failed attempts since it was last queued (the retry budget).
    tries integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (subscription_id, event_id)
);

CREATE INDEX notify_deliveries_pending ON notify_deliveries (subscription_id, seq) WHERE status = 1;
CREATE INDEX notify_deliveries_digest ON notify_deliveries (subscription_id) WHERE status = 4;
CREATE INDEX notify_deliveries_dead ON notify_deliveries (seq) WHERE status = 3;
CREATE INDEX notify_deliveries_by_subscription ON notify_deliveries (subscription_id, seq);

CREATE TABLE notify_attempts (
    delivery_id uuid NOT NULL REFERENCES notify_deliveries (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    status_code integer NOT NULL,
    error text NOT NULL,
    latency_ms integer NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- What notify knows of each item, from the tracker's events.
CREATE TABLE notify_items (
    item_id text PRIMARY KEY,
    organisation_id text NOT NULL,
    text text NOT NULL,
    -- ItemStatus.
    status integer NOT NULL,
    version bigint NOT NULL
);
