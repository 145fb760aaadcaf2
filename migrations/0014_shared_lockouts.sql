-- Failed logins and lockouts shared by the instances of one store: failures per subject
-- (`user:NAME`, `address:IP`) and minute, and the lockouts in force.
CREATE TABLE login_failures (
    subject TEXT NOT NULL,
    minute BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (subject, minute)
);
CREATE TABLE lockouts (
    subject TEXT PRIMARY KEY,
    until_at BIGINT NOT NULL
);
