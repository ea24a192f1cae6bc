#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into a NEW database, then verify it.
#
#   RESTORE_DATABASE_URL=postgres://cs_owner:...@db:5432/cs_platform_restored \
#   MEDIA_ROOT=/srv/restored-media scripts/restore.sh /backups/cs-platform-20261207T020000Z
#
# Order: checksums, roles (roles.sql; on a cluster that has them already, "already exists" errors are
# harmless, or set SKIP_ROLES=1), create the database (it must not exist) owned by RESTORE_OWNER (default:
# the user in RESTORE_DATABASE_URL), pg_restore, then the evidence files into MEDIA_ROOT (must be empty
# or absent). Then run the verification as the app role:
#   DATABASE_URL=postgres://cs_app:...@db:5432/cs_platform_restored MEDIA_ROOT=/srv/restored-media \
#       python manage.py restore_verify
# RESTORE_DATABASE_URL's user must be a superuser (roles, CREATE DATABASE). The server's own
# maintenance database is reached at the same URL with /postgres (RESTORE_ADMIN_URL overrides it).
set -euo pipefail

backup="${1:?usage: scripts/restore.sh BACKUP_DIRECTORY}"
: "${RESTORE_DATABASE_URL:?set RESTORE_DATABASE_URL (postgres:// URL of the new database, as a superuser)}"
: "${MEDIA_ROOT:?set MEDIA_ROOT (where the evidence files are restored)}"
SKIP_ROLES="${SKIP_ROLES:-0}"

url_path="${RESTORE_DATABASE_URL%%\?*}"
database="${url_path##*/}"
RESTORE_ADMIN_URL="${RESTORE_ADMIN_URL:-${url_path%/*}/postgres}"
user_part="${url_path#*://}"
user_part="${user_part%%@*}"
RESTORE_OWNER="${RESTORE_OWNER:-${user_part%%:*}}"
if [[ -z "$database" || -z "$RESTORE_OWNER" ]]; then
    echo "restore.sh: cannot read the database name and user from RESTORE_DATABASE_URL" >&2
    exit 1
fi
if [[ -d "$MEDIA_ROOT" ]] && [[ -n "$(ls -A "$MEDIA_ROOT")" ]]; then
    echo "restore.sh: MEDIA_ROOT=$MEDIA_ROOT is not empty; restore the files into an empty directory" >&2
    exit 1
fi

(cd "$backup" && sha256sum --check --quiet SHA256SUMS)
echo "Checksums of $backup verified."

if [[ "$SKIP_ROLES" != "1" ]]; then
    # Not ON_ERROR_STOP: roles that exist already (postgres, or all of them on the same cluster) fail
    # with "already exists" and the ALTER ROLE that follows sets their attributes from the backup.
    psql --quiet --dbname "$RESTORE_ADMIN_URL" --file "$backup/roles.sql"
    echo "Roles restored."
fi

printf 'CREATE DATABASE :"db" OWNER :"owner";\n' \
    | psql --quiet -v ON_ERROR_STOP=1 -v db="$database" -v owner="$RESTORE_OWNER" --dbname "$RESTORE_ADMIN_URL"
pg_restore --exit-on-error --dbname "$RESTORE_DATABASE_URL" "$backup/database.dump"
echo "Database $database restored."

mkdir -p "$MEDIA_ROOT"
tar -C "$MEDIA_ROOT" -xzf "$backup/media.tar.gz"
echo "Evidence files restored into $MEDIA_ROOT."
echo "Now verify, as the app role: DATABASE_URL=<app role URL of $database> MEDIA_ROOT=$MEDIA_ROOT python manage.py restore_verify"
