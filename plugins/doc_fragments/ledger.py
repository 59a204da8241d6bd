# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The run's change ledger (plugins/module_utils/_ledger.py), for the modules that change things.
    DOCUMENTATION = r"""
options:
  ledger:
    description:
      - The run's change ledger, C(namespace/name) of a ledger ConfigMap opened by M(veritas.chaos.gameday_ledger)
        (a bare name means the ledger in O(namespace)).
      - When set, every change this module makes is recorded there first, with the value it had before (the
        fields a patch touches, an object created, replaced or deleted, a fault set in a pod with the commands
        that undo it), so that M(veritas.chaos.gameday_ledger) with O(veritas.chaos.gameday_ledger#module:state=restored)
        puts back exactly what was there, from any controller, after any interruption.
      - Check mode records nothing. Leases (locks) are not recorded.
      - Can also be set with the E(VERITAS_LEDGER) environment variable, which the game-day playbooks set for
        the run; an empty value records nothing.
    type: str
"""
