#!/usr/bin/env bash
cat SESSIONS/CURRENT_STATE.md
ls -lt SESSIONS/HEARTBEATS/
