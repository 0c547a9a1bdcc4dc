#!/bin/sh
# Runs HAProxy as the official image does: arguments starting with "-" are HAProxy's, and
# HAProxy itself is started in master-worker mode in the foreground (-W -db), so the master
# (PID 1) re-executes the workers on SIGUSR2/SIGHUP without dropping the listening sockets.
set -e
case "$1" in
  -*) set -- haproxy "$@" ;;
esac
if [ "$1" = haproxy ]; then
  shift
  set -- haproxy -W -db "$@"
fi
exec "$@"
