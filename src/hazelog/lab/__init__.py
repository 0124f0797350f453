"""The local lab: real Linux hosts as systemd-nspawn machines on a private bridge.

Modules: inventory (hosts from inventory/lab/hosts.yml), preflight (root, tools), lock
(one lab command at a time), system (subprocess and mount helpers), image (the cached
debootstrap base), bridge, cgroups, machine (clone, start, stop, wait), ssh, lab (up,
down, destroy, status), cli.
"""
