package store_test

import "time"

const testutilTimeout = 5 * time.Second
