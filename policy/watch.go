package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// WatchDebounce is how long Watch waits after the last file event before
// reloading.
const WatchDebounce = 250 * time.Millisecond

// Watch reloads the policy (see Reload) whenever a file under the policy
// directories changes, until ctx ends. A refused reload is logged and the
// old policy stays. It returns nil when ctx ends, or an error when watching
// cannot start (for example with Config.FS set).
func (e *Engine) Watch(ctx context.Context) error {
	return e.watch(ctx, nil)
}

// watch is Watch with an optional callback after each reload attempt.
func (e *Engine) watch(ctx context.Context, onReload func(error)) error {
	if e.cfg.FS != nil {
		return errors.New("policy: cannot watch an embedded file system")
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch: %w", err)
	}
	defer w.Close()
	for _, dir := range e.cfg.Dirs {
		if err := addTree(w, dir); err != nil {
			return err
		}
	}
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				_ = addTree(w, ev.Name) // a new directory: watch it too
			}
			if timer == nil {
				timer = time.NewTimer(WatchDebounce)
			} else {
				timer.Reset(WatchDebounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.Warn("policy watch error", zap.Error(err))
		case <-fire:
			fire = nil
			err := e.Reload(ctx)
			if onReload != nil {
				onReload(err)
			}
		}
	}
}

// addTree watches dir and its subdirectories; a plain file is ignored.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return fmt.Errorf("policy: watch %s: %w", dir, err)
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("policy: watch %s: %w", p, err)
		}
		return nil
	})
}
