package prestashop_test

import (
	"testing"

	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
