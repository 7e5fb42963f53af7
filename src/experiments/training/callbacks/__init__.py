"""Lightning callbacks of this project (what no library callback does)."""
