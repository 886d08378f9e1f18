"""rsmt_studio.app"""
