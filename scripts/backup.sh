#!/usr/bin/env bash
# Back up the database, its roles and the evidence files into one timestamped directory.
#
#   DATABASE_OWNER_URL=postgres://cs_owner:...@db:5432/cs_platform MEDIA_ROOT=/app/media \
#   BACKUP_DIR=/backups scripts/backup.sh
#
# Writes BACKUP_DIR/cs-platform-<UTC time>/ with
#   database.dump  pg_dump --format=custom (schema, data, RLS policies, grants, triggers)
#   roles.sql      pg_dumpall --roles-only (the owner and the app role with their attributes; it holds
#                  password hashes: store it like the dump, or set BACKUP_ROLE_PASSWORDS=0 to leave them out)
#   media.tar.gz   everything under MEDIA_ROOT (compliance evidence files)
#   SHA256SUMS     checksums of the three, checked by scripts/restore.sh
# The connecting role must be a superuser (pg_dumpall reads pg_authid): the owner role of the Docker
# stack (POSTGRES_USER) is one. Client tools of PostgreSQL 15 or newer. No secret is read from here.
set -euo pipefail

: "${DATABASE_OWNER_URL:?set DATABASE_OWNER_URL (the owner role, a postgres:// URL)}"
: "${MEDIA_ROOT:?set MEDIA_ROOT (the evidence files directory)}"
: "${BACKUP_DIR:?set BACKUP_DIR (where the backup directory is created)}"
BACKUP_ROLE_PASSWORDS="${BACKUP_ROLE_PASSWORDS:-1}"

if [[ ! -d "$MEDIA_ROOT" ]]; then
    echo "backup.sh: MEDIA_ROOT=$MEDIA_ROOT is not a directory" >&2
    exit 1
fi
umask 077
out="$BACKUP_DIR/cs-platform-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

# The dump is one consistent snapshot; the media archive is taken after it. Evidence files are written
# before their row commits and never deleted, so every evidence row in the dump has its file in the
# archive; a file uploaded in between is archived without its row, which is harmless.
pg_dump --format=custom --file "$out/database.dump" --dbname "$DATABASE_OWNER_URL"
role_flags=()
if [[ "$BACKUP_ROLE_PASSWORDS" == "0" ]]; then
    role_flags+=(--no-role-passwords)
fi
pg_dumpall --roles-only "${role_flags[@]}" --file "$out/roles.sql" --dbname "$DATABASE_OWNER_URL"
tar -C "$MEDIA_ROOT" -czf "$out/media.tar.gz" .
(cd "$out" && sha256sum database.dump roles.sql media.tar.gz > SHA256SUMS)

echo "Backup written to $out"
ls -l "$out"
