# -*- coding: utf-8 -*-
# Copyright: mizar.transit contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter mizar.transit.prometheus: a host's transit_info result in the
Prometheus text format (module_utils/model/metrics.py), on the controller.
Its documentation is in prometheus.yml next to this file.

    {{ mizar_info | mizar.transit.prometheus(inventory_hostname) }}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mizar.transit.plugins.module_utils.model import metrics


def prometheus(info, host):
    """The text of host's counters (info: its transit_info result)."""
    try:
        return metrics.exposition(str(host), info)
    except metrics.MetricsError as e:
        raise AnsibleFilterError("mizar.transit.prometheus: %s" % e)


class FilterModule(object):
    """mizar.transit metrics filters."""

    def filters(self):
        return {"prometheus": prometheus}
