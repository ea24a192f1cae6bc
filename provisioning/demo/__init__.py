"""The demo tenants: `seeder` builds them (what `manage.py seed_demo` runs), `vocabulary` holds the
words, names and mixes it draws from."""
