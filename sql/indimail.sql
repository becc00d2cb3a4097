-- IndiMail tables read by indilookup.
--
-- Column names and types follow the layouts the IndiMail C programs create on
-- demand, so that an existing IndiMail database works unchanged and a new one
-- made from this file works with the C tools. Every statement is idempotent.
--
-- Load it with:  mariadb DBNAME < indimail.sql

-- Active users.
CREATE TABLE IF NOT EXISTS indimail (
  pw_name   char(40)  NOT NULL,
  pw_domain char(67)  NOT NULL,
  pw_passwd char(128) NOT NULL,
  pw_uid    int,
  pw_gid    int,
  pw_gecos  char(48)  NOT NULL,
  pw_dir    char(156),
  pw_shell  char(30),
  scram     char(255),
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (pw_name, pw_domain),
  INDEX pw_gecos (pw_gecos(25)),
  INDEX pw_uid (pw_uid)
);

-- Inactive users: same layout; a user found here is "inactive".
CREATE TABLE IF NOT EXISTS indibak (
  pw_name   char(40)  NOT NULL,
  pw_domain char(67)  NOT NULL,
  pw_passwd char(128) NOT NULL,
  pw_uid    int,
  pw_gid    int,
  pw_gecos  char(48)  NOT NULL,
  pw_dir    char(156),
  pw_shell  char(30),
  scram     char(255),
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (pw_name, pw_domain),
  INDEX pw_gecos (pw_gecos(25)),
  INDEX pw_uid (pw_uid)
);

-- POP/IMAP-before-SMTP: written at login, read by RELAY queries.
-- timestamp is Unix seconds.
CREATE TABLE IF NOT EXISTS relay (
  email     char(96) NOT NULL,
  ipaddr    char(46) NOT NULL,
  timestamp int,
  UNIQUE INDEX (email, ipaddr),
  INDEX (ipaddr),
  INDEX (timestamp)
);

-- Last authentication per user and service (imap, pop3, webm).
CREATE TABLE IF NOT EXISTS lastauth (
  user      char(40) NOT NULL,
  domain    char(67) NOT NULL,
  service   char(10) NOT NULL,
  remote_ip char(46) NOT NULL,
  quota     int      NOT NULL,
  gecos     char(48) NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (user, domain, service),
  INDEX gecos (gecos),
  INDEX quota (quota),
  INDEX timestamp (timestamp)
);

-- Virtual aliases and forwardings.
CREATE TABLE IF NOT EXISTS valias (
  alias       char(40)  NOT NULL,
  domain      char(67)  NOT NULL,
  valias_line char(190) NOT NULL,
  timestamp   TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  UNIQUE INDEX (alias, domain, valias_line),
  INDEX (alias, domain)
);

-- Domain limits: `domain` is a domain, or user@domain for per-user limits.
CREATE TABLE IF NOT EXISTS vlimits (
  domain                   CHAR(67) NOT NULL,
  domain_expiry            INT(10)  NOT NULL DEFAULT -1,
  passwd_expiry            INT(10)  NOT NULL DEFAULT -1,
  maxpopaccounts           INT(10)  NOT NULL DEFAULT -1,
  maxaliases               INT(10)  NOT NULL DEFAULT -1,
  maxforwards              INT(10)  NOT NULL DEFAULT -1,
  maxautoresponders        INT(10)  NOT NULL DEFAULT -1,
  maxmailinglists          INT(10)  NOT NULL DEFAULT -1,
  diskquota                BIGINT UNSIGNED NOT NULL DEFAULT 0,
  maxmsgcount              BIGINT UNSIGNED NOT NULL DEFAULT 0,
  defaultquota             BIGINT   NOT NULL DEFAULT 0,
  defaultmaxmsgcount       BIGINT UNSIGNED NOT NULL DEFAULT 0,
  disable_pop              TINYINT(1) NOT NULL DEFAULT 0,
  disable_imap             TINYINT(1) NOT NULL DEFAULT 0,
  disable_dialup           TINYINT(1) NOT NULL DEFAULT 0,
  disable_passwordchanging TINYINT(1) NOT NULL DEFAULT 0,
  disable_webmail          TINYINT(1) NOT NULL DEFAULT 0,
  disable_relay            TINYINT(1) NOT NULL DEFAULT 0,
  disable_smtp             TINYINT(1) NOT NULL DEFAULT 0,
  perm_account             TINYINT(2) NOT NULL DEFAULT 0,
  perm_alias               TINYINT(2) NOT NULL DEFAULT 0,
  perm_forward             TINYINT(2) NOT NULL DEFAULT 0,
  perm_autoresponder       TINYINT(2) NOT NULL DEFAULT 0,
  perm_maillist            TINYINT(4) NOT NULL DEFAULT 0,
  perm_quota               TINYINT(2) NOT NULL DEFAULT 0,
  perm_defaultquota        TINYINT(2) NOT NULL DEFAULT 0,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (domain)
);

-- Alias domain -> real domain (consulted for domains missing from users/cdb).
CREATE TABLE IF NOT EXISTS aliasdomain (
  alias     char(64) NOT NULL,
  domain    char(67),
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (alias)
);

-- SMTP/QMTP port of a mail store host, per domain and source host ('*' = any).
CREATE TABLE IF NOT EXISTS smtp_port (
  host      char(64) NOT NULL,
  src_host  char(64) NOT NULL,
  domain    char(64) NOT NULL,
  port      int,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (domain, host, src_host)
);

-- Cluster tables, created so that a database made from this file matches an
-- IndiMail one; a single-database site leaves them empty.
CREATE TABLE IF NOT EXISTS hostcntrl (
  pw_name   char(40)  NOT NULL,
  pw_domain char(67)  NOT NULL,
  pw_passwd char(128) NOT NULL,
  host      char(64)  NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (pw_name, pw_domain)
);

CREATE TABLE IF NOT EXISTS host_table (
  host      char(64) NOT NULL,
  ipaddr    char(46) NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (host),
  INDEX ipaddr (ipaddr)
);

CREATE TABLE IF NOT EXISTS ip_alias_map (
  ipaddr    char(46) NOT NULL,
  domain    char(67),
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  PRIMARY KEY (ipaddr)
);

-- The mailstore records of a cluster (control/mcdinfo), as IndiMail's tools
-- keep them on the central database when control/host.master exists.
CREATE TABLE IF NOT EXISTS dbinfo (
  filename    char(128) NOT NULL,
  domain      char(64)  NOT NULL,
  distributed int       NOT NULL,
  server      char(28)  NOT NULL,
  mdahost     char(28)  NOT NULL,
  port        int       NOT NULL,
  use_ssl     int       NOT NULL DEFAULT 0,
  dbname      char(28)  NOT NULL,
  user        char(28)  NOT NULL,
  passwd      char(28)  NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP NOT NULL,
  UNIQUE INDEX (filename, domain, server, mdahost, port, dbname, user, passwd),
  INDEX (domain)
);
