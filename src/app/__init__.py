"""The composition root. Importing it first imports structlog and dependency-injector without
the optional integrations they look for and Taskhub does not use (`app.lean_imports`)."""

from app.lean_imports import import_lean

import_lean()
