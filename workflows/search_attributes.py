"""The typed search attributes of dmcflow, declared once. Never personal data."""

from temporalio.common import SearchAttributeKey

ROUND = SearchAttributeKey.for_keyword("DmcRound")
AREA = SearchAttributeKey.for_keyword("DmcArea")
SCHOOL = SearchAttributeKey.for_keyword("DmcSchool")
STAGE = SearchAttributeKey.for_keyword("DmcStage")

ALL = (ROUND, AREA, SCHOOL, STAGE)


def dev_server_args() -> list[str]:
    """`--search-attribute` flags that register them on `temporal server start-dev`."""
    args: list[str] = []
    for key in ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
