package loggate_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/domainconfirm/domainconfirm/internal/loggate"
)

func TestGate(t *testing.T) {
	g := loggate.New(10*time.Second, 3)
	t0 := time.Unix(1767225600, 0)
	for i := range 3 {
		_, ok := g.Allow(t0.Add(time.Duration(i) * time.Second))
		assert.True(t, ok, "record %d within the burst", i)
	}
	for i := range 5 {
		_, ok := g.Allow(t0.Add(5 * time.Second))
		assert.False(t, ok, "record %d beyond the burst", i)
	}
	dropped, ok := g.Allow(t0.Add(10 * time.Second))
	assert.True(t, ok, "a new window")
	assert.Equal(t, 5, dropped, "the first record of the window counts the ones left out")
	dropped, ok = g.Allow(t0.Add(11 * time.Second))
	assert.True(t, ok)
	assert.Zero(t, dropped)
}
