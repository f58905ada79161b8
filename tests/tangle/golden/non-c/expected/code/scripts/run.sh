#!/bin/sh
for n in 1 2 3; do
    echo "$n"
done
