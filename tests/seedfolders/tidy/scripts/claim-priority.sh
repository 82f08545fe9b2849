#!/usr/bin/env bash
echo "$1" > SESSIONS/PRIORITIES/"$1".lock
