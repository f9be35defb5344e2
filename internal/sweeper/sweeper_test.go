package sweeper

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestSweeperSweepsUntilStopped(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var calls atomic.Int32
	swept := make(chan struct{}, 16)
	s := Start(context.Background(), time.Millisecond, zap.New(core), func(context.Context) (int, error) {
		n := calls.Add(1)
		defer func() { swept <- struct{}{} }()
		if n == 1 {
			return 0, errors.New("store down")
		}
		return 2, nil
	})
	<-swept
	<-swept
	s.Stop()
	after := calls.Load()
	s.Stop() // a second Stop does nothing
	if calls.Load() != after {
		t.Fatal("a sweep ran after Stop returned")
	}
	if logs.FilterMessage("sweeping expired one-time keys").FilterField(zap.Error(errors.New("store down"))).Len() != 1 {
		t.Errorf("the failed sweep is not logged as a warning: %v", logs.All())
	}
	if logs.FilterMessage("swept expired one-time keys").FilterField(zap.Int("removed", 2)).Len() == 0 {
		t.Errorf("the sweep that removed keys is not logged: %v", logs.All())
	}
}

func TestSweeperStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := Start(ctx, time.Hour, zap.NewNop(), func(context.Context) (int, error) { return 0, nil })
	cancel()
	<-s.Done() // the sweeper ends with its context, without Stop
	s.Stop()
	var never *Sweeper
	never.Stop() // a store that never started one
}
