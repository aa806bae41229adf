public enum TallyStoreModule {}
