"""rsmt_studio.viewer"""
