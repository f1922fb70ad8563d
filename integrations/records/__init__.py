"""Records: CRM objects in SQL (the SOQL/DML of circuits) and record triggers through an outbox.

* :mod:`~integrations.records.schema`: the objects (lead, account, contact, opportunity,
  activity) and their tables; :mod:`~integrations.records.values` checks values.
* :mod:`~integrations.records.query`: filters and sorts over an allow-list, never SQL text.
* :mod:`~integrations.records.store`: reads and writes; each write stages its event.
* :mod:`~integrations.records.outbox`: events staged with the write, relayed after commit,
  swept when left unsent; the publisher is a hook the workers install.
* :mod:`~integrations.records.actions`: the ``data.*`` actions.
* :mod:`~integrations.records.importer`: ``circuit-os records import`` (CSV, as upserts).
"""

from integrations.records.importer import ImportReport, import_csv
from integrations.records.outbox import Origin, set_publisher, sweep
from integrations.records.schema import OBJECTS
from integrations.records.store import Store, Write, writing

__all__ = ["OBJECTS", "ImportReport", "Origin", "Store", "Write", "import_csv", "set_publisher", "sweep", "writing"]
