"""The school staff's roster pages: the DMC export's import with its row-by-row report, the student list, and
the forms of the rules table (add, transfer in, edit, transfer out, a death) for one school in one round.

Every action calls the JSON API's own function (api/routers/roster.py `import_roster_file`,
api/routers/students.py), so a page can do nothing the API would refuse and says the same reason in words,
beside the field it is about. The list reads the `students` table only, never a workflow. A student is named
in a path by the row's number and in searches by a POST body: national IDs and names stay out of access logs.
The list shows an ID masked but for its last four digits; the student's own page shows it whole.

One module per page: `listing` (the list and its search), `dmc_import` (the import), `new_student` (add,
transfer in), `student` (one student and the forms that change the record); `common` holds what they share.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.roster_pages import dmc_import, listing, new_student, student

router = APIRouter()
for part in (listing, dmc_import, new_student, student):
    router.include_router(part.router)
