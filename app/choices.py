"""The fixed lists a value is checked against, in a module that imports nothing.

The `flask` commands offer them as option choices: their --help and option checks read
them here without importing the models or the report code (tests/test_cli_imports.py).
"""

# A dashboard user's role (app/roles.py says what each may do), most powerful first.
ROLES = ("owner", "admin", "analyst")
ORG_TIERS = ("trial", "paid")
PRODUCT_TYPES = ("B2B", "B2C")
# The formats of a month-end report (app/exports.py writes them).
REPORT_FORMATS = ("csv", "json")
